//! From a resolved configuration to a running registry.

use std::sync::Arc;

use yoi_runtime_embedded::EmbeddedRuntime;
use yoi_runtime_local_compat::LocalCompatRuntime;
use yoi_workspace_server::registry::RegistryError;
use yoi_workspace_server::{AppState, RuntimeRegistry};

use crate::config::{RuntimeConfig, ServerConfig};

/// Building the server's state failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WiringError {
    /// An embedded Runtime rejected its options.
    #[error(transparent)]
    Embedded(#[from] yoi_runtime_embedded::ConfigError),
    /// A Runtime could not be registered.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Builds every configured Runtime, registers them in order, and wraps the
/// registry in the server's state with the configured token, body limit and
/// CORS origins. The listen address is the caller's business.
pub async fn build_state(config: ServerConfig) -> Result<AppState, WiringError> {
    let mut registry = RuntimeRegistry::new();
    for runtime in config.runtimes {
        match runtime {
            RuntimeConfig::Embedded(options) => {
                registry
                    .register(Arc::new(EmbeddedRuntime::new(options)?))
                    .await?;
            }
            RuntimeConfig::LocalCompat {
                runtime_id,
                display_name,
                workspace,
            } => {
                let local =
                    LocalCompatRuntime::new(workspace).with_identity(runtime_id, display_name);
                registry.register(Arc::new(local)).await?;
            }
        }
    }
    Ok(AppState::new(registry, config.token, config.max_body_bytes)
        .with_cors_allowed_origins(config.cors_allowed_origins))
}
