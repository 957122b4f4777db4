//! The yoi workspace server: a [`RuntimeRegistry`] of Runtimes behind a
//! browser-facing HTTP API, routed by `runtime_id` + `worker_id`.
//!
//! [`app`] builds the router over an [`AppState`]; [`serve`] runs it on a
//! listener until a shutdown future resolves. **This crate depends on the
//! contract (`yoi-runtime-api`) only**: it routes to any `Arc<dyn Runtime>`
//! and knows no implementation. The `yoi` binary builds the Runtimes from
//! configuration and calls these, so tests run the same code.

pub mod auth;
mod console;
pub mod error;
pub mod extract;
pub mod forwarded;
mod frames;
pub mod guard;
mod header_timer;
pub mod host;
mod json;
pub mod limits;
mod middleware;
mod openapi;
pub mod registry;
pub mod request_log;
mod routes;
mod serve;
pub mod session;
pub mod state;
pub mod throttle;
pub mod views;
mod write_deadline;

pub use error::ApiError;
pub use forwarded::TrustedProxies;
pub use host::HostPolicy;
pub use limits::{ConnectionLimits, FailedAuthLimits};
pub use registry::{RuntimeEntry, RuntimeRegistry};
pub use request_log::{AnsweredRequest, RequestLog};
pub use routes::app;
pub use state::AppState;
pub use throttle::ClientAddress;

/// Serves `state` on `listener` under its [`ConnectionLimits`] until
/// `shutdown` resolves; then the listener closes, long-lived responses (SSE
/// streams, long polls) are told to finish, in-flight requests get the
/// limits' grace period to complete, and what is left is closed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let policy = state.host_policy().clone().bound_to(listener.local_addr()?);
    let state = state.with_host_policy(policy);
    let router = routes::service(state.clone());
    let limits = state.connection_limits();
    serve::run(listener, router, state, limits, shutdown).await
}
