//! Serves one Runtime over HTTP for remote clients (`yoi-runtime-remote`).
//!
//! **The protocol is the workspace server's own API**: a runtime server is
//! a workspace server whose registry holds exactly one Runtime and which
//! always requires a bearer token. So a client speaks to a runtime server
//! and to a workspace server's runtime scope (`/api/runtimes/{id}/...`)
//! alike, errors are the contract's problem documents, and event streams
//! resume with `Last-Event-ID`. Nothing here copies a route.

use std::sync::Arc;

use secrecy::SecretString;
use yoi_runtime_api::DynRuntime;
use yoi_workspace_server::registry::RegistryError;
use yoi_workspace_server::state::DEFAULT_MAX_BODY_BYTES;
use yoi_workspace_server::{AppState, RuntimeRegistry};

/// The server state for `runtime`, requiring `token` on every `/api` route.
pub async fn state(
    runtime: Arc<DynRuntime>,
    token: SecretString,
) -> Result<AppState, RegistryError> {
    let mut registry = RuntimeRegistry::new();
    registry.register(runtime).await?;
    Ok(AppState::new(registry, Some(token), DEFAULT_MAX_BODY_BYTES))
}

/// Serves `runtime` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    runtime: Arc<DynRuntime>,
    token: SecretString,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = state(runtime, token).await.map_err(std::io::Error::other)?;
    yoi_workspace_server::serve(listener, state, shutdown).await
}
