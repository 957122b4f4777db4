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
pub mod guard;
mod openapi;
pub mod registry;
mod routes;
pub mod session;
pub mod state;
pub mod views;

pub use error::ApiError;
pub use guard::HostPolicy;
pub use registry::{RuntimeEntry, RuntimeRegistry};
pub use routes::app;
pub use state::AppState;

/// Serves `state` on `listener` until `shutdown` resolves; then long-lived
/// responses (SSE streams, long polls) are told to finish, and in-flight
/// requests complete before this returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let policy = state.host_policy().clone().bound_to(listener.local_addr()?);
    let state = state.with_host_policy(policy);
    let router = app(state.clone());
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down");
            state.begin_shutdown();
        })
        .await
}
