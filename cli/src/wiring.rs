//! From a resolved configuration to a running registry.

use std::sync::Arc;

use std::path::Path;

use yoi_runtime_embedded::store::{LoadBounds, SqliteStore, StoreError, create_private_folder};
use yoi_runtime_embedded::{EmbeddedOptions, EmbeddedRuntime};
use yoi_runtime_local_compat::LocalCompatRuntime;
use yoi_runtime_remote::RemoteRuntime;
use yoi_workspace_server::registry::RegistryError;
use yoi_workspace_server::{AppState, HostPolicy, RuntimeRegistry};

use crate::config::{RuntimeConfig, ServerConfig, StoreConfig};

/// Opens (creating its folder) the SQLite store of one Runtime.
fn open_sqlite(path: &Path, options: &EmbeddedOptions) -> Result<SqliteStore, WiringError> {
    if let Some(folder) = path.parent() {
        create_private_folder(folder).map_err(|e| WiringError::Store {
            runtime_id: options.runtime_id.clone(),
            source: StoreError::Io(e.to_string()),
        })?;
    }
    let retain = LoadBounds {
        entries: options.limits.max_transcript_entries,
        events: options.limits.max_events_per_worker,
        client_ids: options.limits.max_remembered_client_ids,
    };
    SqliteStore::open(path, retain).map_err(|source| WiringError::Store {
        runtime_id: options.runtime_id.clone(),
        source,
    })
}

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
    /// A remote Runtime did not answer at start.
    #[error("runtime '{runtime_id}': {source}")]
    Remote {
        /// The Runtime.
        runtime_id: yoi_runtime_api::RuntimeId,
        /// Why (never the peer's address).
        source: yoi_runtime_api::RuntimeError,
    },
    /// A Runtime's store cannot be opened.
    #[error("runtime '{runtime_id}': {source}")]
    Store {
        /// The Runtime.
        runtime_id: yoi_runtime_api::RuntimeId,
        /// Why.
        source: StoreError,
    },
}

/// The server's state, and the Runtimes to shut down after serving.
#[derive(Debug)]
pub struct Assembly {
    /// What the HTTP API serves.
    pub state: AppState,
    embedded: Vec<EmbeddedRuntime>,
}

impl Assembly {
    /// Shuts every embedded Runtime down: running turns end failed, and
    /// their stores write everything before this returns.
    pub async fn shutdown(&self) {
        for runtime in &self.embedded {
            runtime.shutdown().await;
        }
    }
}

/// [`build`], for callers that do not shut Runtimes down themselves
/// (tests, benchmarks): the state alone.
pub async fn build_state(config: ServerConfig) -> Result<AppState, WiringError> {
    Ok(build(config).await?.state)
}

/// Builds every configured Runtime, registers them in order, and wraps the
/// registry in the server's state with the configured token, body limit and
/// CORS origins: the one function from configuration to a server. The
/// listen address is the caller's business.
pub async fn build(config: ServerConfig) -> Result<Assembly, WiringError> {
    let mut registry = RuntimeRegistry::new();
    let mut embedded = Vec::new();
    for runtime in config.runtimes {
        match runtime {
            RuntimeConfig::Embedded { options, store } => {
                let runtime = match store {
                    StoreConfig::Memory => EmbeddedRuntime::new(options)?,
                    StoreConfig::Sqlite { path, stall_after } => {
                        let store = open_sqlite(&path, &options)?.stall_after(stall_after);
                        EmbeddedRuntime::open(options, Arc::new(store))?
                    }
                };
                embedded.push(runtime.clone());
                registry.register(Arc::new(runtime)).await?;
            }
            RuntimeConfig::Remote {
                runtime_id,
                display_name,
                url,
                token,
            } => {
                // A host that is down (or refuses us) now is registered as
                // unavailable and joins when it answers.
                let remote = RemoteRuntime::new(&url, runtime_id.clone(), token, display_name)
                    .map_err(|source| WiringError::Remote { runtime_id, source })?;
                let placeholder = remote.placeholder();
                registry
                    .register_unavailable(Arc::new(remote), placeholder)
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
    let state = AppState::new(registry, config.token, config.max_body_bytes)
        .with_cors_allowed_origins(config.cors_allowed_origins)
        .with_host_policy(HostPolicy::new(config.allowed_hosts))
        .with_connection_limits(config.connection_limits)
        .with_failed_auth_limits(config.failed_auth_limits)
        .with_trusted_proxies(config.trusted_proxies);
    Ok(Assembly { state, embedded })
}
