//! The accept loop: connection limits applied before any request is read,
//! and a shutdown with a deadline.
//!
//! `axum::serve` gives hyper no timer, so hyper's header timeout never
//! fires, and it bounds neither connections nor shutdown. This loop drives
//! hyper's HTTP/1 connections itself:
//!
//! - **header timeout**: a request's headers must arrive within it, and an
//!   idle keep-alive connection is closed after it (hyper starts the timer
//!   when the connection goes idle); one Tokio timer per connection
//!   (`header_timer.rs`), not one per request;
//! - **header bytes**: hyper's read buffer is capped, so a request whose
//!   headers do not fit is refused (431) without growing memory;
//! - **connections**: at most `max_connections` are served; `reserve`
//!   more are accepted but answer only `/healthz` (anything else is `503
//!   capacity_exceeded` and the connection closes), with a 250 ms header
//!   timeout and one request each, so health checks work while the cap is
//!   reached; beyond that a connection is closed at once;
//! - **write deadline**: a write that makes no progress for
//!   `write_timeout` closes the connection (`write_deadline.rs`), so a
//!   client that stops reading holds nothing for long;
//! - **shutdown**: the listener closes, SSE streams and long polls are told
//!   to finish, connections finish their current request, and whatever is
//!   left after the grace period is dropped.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, header};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;
use yoi_runtime_api::RuntimeError;

use crate::error::ApiError;
use crate::forwarded::TrustedProxies;
use crate::header_timer::HeaderTimer;
use crate::limits::ConnectionLimits;
use crate::routes::AppService;
use crate::state::AppState;
use crate::throttle::ClientAddress;
use crate::write_deadline::WriteDeadline;

/// The smallest header buffer hyper accepts.
const MIN_HEADER_BYTES: usize = 8192;
/// The header timeout of a reserve connection: health checkers send at
/// once, and an attacker must not hold a reserve slot for long.
const RESERVE_HEADER_TIMEOUT: Duration = Duration::from_millis(250);
/// How long to pause accepting after the process ran out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Whether a connection is served in full or only for health checks.
enum Admission {
    Full(#[allow(dead_code)] OwnedSemaphorePermit),
    HealthOnly(#[allow(dead_code)] OwnedSemaphorePermit),
}

/// Who sends a connection's requests, as the wrong-token throttle counts.
enum Client {
    /// The peer itself.
    Direct(ClientAddress),
    /// A trusted reverse proxy at this address: each request names its
    /// client in a forwarding header (`forwarded.rs`).
    BehindProxy(IpAddr, TrustedProxies),
}

/// Serves `router` on `listener` under `limits` until `shutdown` resolves,
/// then shuts down within `limits.shutdown_grace`.
pub(crate) async fn run(
    listener: TcpListener,
    router: AppService,
    state: AppState,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let full = Arc::new(Semaphore::new(limits.max_connections));
    let reserve = Arc::new(Semaphore::new(limits.reserve_connections));
    let (closing, closing_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let throttled = state.token().is_some();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
            // Reap finished connections so the set stays small.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of descriptors or a connection reset before accept:
                // pause rather than spin, and keep serving.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let admission = if let Ok(permit) = full.clone().try_acquire_owned() {
            Admission::Full(permit)
        } else if let Ok(permit) = reserve.clone().try_acquire_owned() {
            Admission::HealthOnly(permit)
        } else {
            tracing::debug!("connection refused: at capacity");
            drop(stream);
            continue;
        };
        // Only the wrong-token throttle reads the client's address, and
        // without a token there is nothing to guess.
        let client = throttled.then(|| {
            let peer = peer.ip();
            let proxies = state.trusted_proxies();
            if proxies.contains(peer) {
                Client::BehindProxy(peer, proxies.clone())
            } else {
                Client::Direct(ClientAddress(peer))
            }
        });
        connections.spawn(connection(
            stream,
            client,
            router.clone(),
            admission,
            limits,
            closing_rx.clone(),
        ));
    }
    drop(listener);
    tracing::info!("shutting down");
    state.begin_shutdown();
    closing.send_replace(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = connections.len(),
            "connections still open after the shutdown grace period are closed"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    Ok(())
}

/// Serves one connection until it ends, or until shutdown asks it to finish
/// its current request.
async fn connection(
    stream: TcpStream,
    client: Option<Client>,
    router: AppService,
    admission: Admission,
    limits: ConnectionLimits,
    mut closing: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let health_only = matches!(admission, Admission::HealthOnly(_));
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        let router = router.clone();
        let address = match &client {
            None => None,
            Some(Client::Direct(address)) => Some(*address),
            Some(Client::BehindProxy(proxy, proxies)) => Some(ClientAddress(
                proxies.client_behind(*proxy, request.headers()),
            )),
        };
        if let Some(address) = address {
            request.extensions_mut().insert(address);
        }
        async move {
            if health_only && request.uri().path() != "/healthz" {
                return Ok::<_, Infallible>(at_capacity());
            }
            router
                .oneshot(request.map(Body::new))
                .await
                .map_err(|never| match never {})
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(HeaderTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES));
    if health_only {
        // One quick request, then the slot is free for the next checker.
        builder
            .header_read_timeout(limits.header_timeout.min(RESERVE_HEADER_TIMEOUT))
            .keep_alive(false);
    }
    let stream = WriteDeadline::new(stream, limits.write_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = async { closing.wait_for(|closing| *closing).await.is_ok() } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
    drop(admission);
}

/// The answer of a reserve connection to anything but `/healthz`.
fn at_capacity() -> Response<Body> {
    let mut response = ApiError(RuntimeError::CapacityExceeded {
        what: "connections".to_owned(),
    })
    .into_response();
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}
