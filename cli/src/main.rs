//! `yoi-workspace-server`: parses configuration, builds the registry and
//! serves the HTTP API until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use secrecy::SecretString;
use tracing_subscriber::EnvFilter;
use yoi_runtime_api::dto::ImplementationKind;
use yoi_runtime_embedded::EmbeddedRuntime;
use yoi_workspace_server::config::{FileConfig, Overrides, ServerConfig};
use yoi_workspace_server::local_compat::LocalCompatRuntime;
use yoi_workspace_server::{AppState, RuntimeEntry, RuntimeRegistry, serve};

/// The yoi workspace server: Runtimes and their Workers over HTTP.
// No `Debug`: the arguments hold paths, which never go to output.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on (default 127.0.0.1:38700). A non-loopback address
    /// needs a token.
    #[arg(long, env = "YOI_BIND")]
    bind: Option<SocketAddr>,
    /// Workspace folder whose local Workers are shown read-only.
    #[arg(long, env = "YOI_WORKSPACE")]
    workspace: Option<PathBuf>,
    /// TOML config file (see docs/configuration.md).
    #[arg(long, env = "YOI_CONFIG")]
    config: Option<PathBuf>,
    /// File holding the bearer token required on /api.
    #[arg(long, env = "YOI_TOKEN_FILE")]
    token_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let config = match load(cli) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("yoi-workspace-server: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("yoi-workspace-server: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("yoi-workspace-server: {err}");
            ExitCode::FAILURE
        }
    }
}

fn load(cli: Cli) -> Result<ServerConfig, Box<dyn std::error::Error>> {
    let file = match &cli.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let overrides = Overrides {
        bind: cli.bind,
        workspace: cli.workspace,
        token_file: cli.token_file,
        token: std::env::var("YOI_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .map(SecretString::from),
    };
    Ok(file.resolve(overrides, |var| std::env::var(var).ok())?)
}

async fn run(config: ServerConfig) -> Result<(), Box<dyn std::error::Error>> {
    let mut registry = RuntimeRegistry::new();
    let embedded = EmbeddedRuntime::new(config.embedded)?;
    registry.register(RuntimeEntry::new(
        Arc::new(embedded),
        ImplementationKind::Embedded,
    ))?;
    if let Some(workspace) = config.workspace {
        let local = LocalCompatRuntime::new(workspace);
        let diagnostics = local.diagnostics_source();
        registry.register(
            RuntimeEntry::new(Arc::new(local), ImplementationKind::LocalCompat)
                .with_diagnostics(diagnostics),
        )?;
    }
    let state = AppState::new(registry, config.token, config.max_body_bytes)
        .with_cors_allowed_origins(config.cors_allowed_origins);
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    serve(listener, state, shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGINT or (on Unix) SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}
