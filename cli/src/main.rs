//! `yoi`: parses configuration, builds the Runtimes and serves the
//! workspace server until SIGINT or SIGTERM. `yoi` alone is `yoi serve`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;
use tracing_subscriber::EnvFilter;
use yoi::config::{FileConfig, Overrides, RuntimeFileConfig, RuntimeKind, ServerConfig};
use yoi::log_fields::LogFields;
use yoi::log_format::LogFormat;
use yoi::log_output::BatchedWriter;
use yoi::request_line::RequestLine;
use yoi::{WiringError, build};
use yoi_runtime_api::RuntimeId;
use yoi_workspace_server::{RequestLog, serve};

/// yoi: long-lived LLM Workers and the workspace server that hosts them.
// No `Debug`: the arguments hold paths, which never go to output.
#[derive(Parser)]
#[command(name = "yoi", version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no subcommand, `yoi` takes `serve`'s flags.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the workspace server (the default).
    Serve(ServeArgs),
    /// A Runtime process for workspace servers on other hosts.
    #[command(subcommand)]
    Runtime(RuntimeCommand),
    /// Chats with a Worker of a running server in the terminal.
    Chat(yoi::chat::ChatArgs),
    /// Copies every embedded Runtime's store of a data directory into a new
    /// folder, while a server may be running; serve the copy with
    /// `--data-dir`.
    Backup(BackupArgs),
}

#[derive(Args)]
struct BackupArgs {
    /// The data directory to copy (default: the platform data directory,
    /// e.g. ~/.local/share/yoi).
    #[arg(long, env = "YOI_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The new folder to copy into; it must not exist or be empty.
    to: PathBuf,
}

#[derive(Subcommand)]
enum RuntimeCommand {
    /// Serves one embedded Runtime over HTTP (register it in a workspace
    /// server's config as `kind = "remote"`).
    Serve(RuntimeServeArgs),
}

#[derive(Args)]
struct RuntimeServeArgs {
    /// The Runtime's id; workspace servers register it under this id.
    #[arg(long)]
    id: RuntimeId,
    /// Address to listen on, `IP:PORT` or `localhost:PORT` (default
    /// 127.0.0.1:7841). A non-loopback address
    /// needs a token.
    #[arg(long, env = "YOI_RUNTIME_BIND", value_parser = parse_bind)]
    bind: Option<SocketAddr>,
    /// TOML config file for profiles and limits (see docs/configuration.md).
    #[arg(long, env = "YOI_CONFIG")]
    config: Option<PathBuf>,
    /// File holding the bearer token workspace servers must send
    /// (or YOI_RUNTIME_TOKEN).
    #[arg(long, env = "YOI_RUNTIME_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Where Workers are kept across restarts (default: the platform data
    /// directory).
    #[arg(long, env = "YOI_DATA_DIR", conflicts_with = "memory")]
    data_dir: Option<PathBuf>,
    /// Keep Workers in memory only.
    #[arg(long)]
    memory: bool,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on, `IP:PORT` or `localhost:PORT` (default
    /// 127.0.0.1:7840). A non-loopback address
    /// needs a token.
    #[arg(long, env = "YOI_BIND", value_parser = parse_bind)]
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
    /// Where Workers are kept across restarts (default: the platform data
    /// directory, e.g. ~/.local/share/yoi).
    #[arg(long, env = "YOI_DATA_DIR", conflicts_with = "memory")]
    data_dir: Option<PathBuf>,
    /// Keep Workers in memory only: they are gone when the server stops.
    #[arg(long)]
    memory: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match cli.command {
        Some(Command::Chat(args)) => return chat(args),
        Some(Command::Backup(args)) => return backup(args),
        other => other,
    };
    // Info lines are written in batches (see `log_output`); the guard
    // writes what is left when `main` returns.
    let (log_writer, _log_guard) = match BatchedWriter::new(std::io::stdout()) {
        Ok(batched) => batched,
        Err(err) => {
            eprintln!("yoi: cannot start the log writer: {err}");
            return ExitCode::FAILURE;
        }
    };
    let colour = std::io::stdout().is_terminal();
    // Without colour, the line per request is written without a `tracing`
    // event (see `request_line`), into the same writer.
    let request_log: Option<&'static dyn RequestLog> =
        (!colour).then(|| &*Box::leak(Box::new(RequestLine::new(log_writer.clone()))) as _);
    tracing_subscriber::fmt()
        .with_writer(log_writer)
        // Colour only for a person at a terminal, never into a file.
        .with_ansi(colour)
        // The default format's lines, at less cost per line.
        .event_format(LogFormat::default())
        .fmt_fields(LogFields::default())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    // The environment variable that sets `--bind`, named when binding fails.
    let (loaded, bind_env) = match command {
        Some(Command::Chat(_) | Command::Backup(_)) => unreachable!("handled above"),
        Some(Command::Serve(args)) => (load(args), "YOI_BIND"),
        Some(Command::Runtime(RuntimeCommand::Serve(args))) => {
            (load_runtime(args), "YOI_RUNTIME_BIND")
        }
        None => (load(cli.serve), "YOI_BIND"),
    };
    let config = match loaded {
        Ok(config) => config,
        Err(err) => {
            eprintln!("yoi: {err}");
            return ExitCode::from(2);
        }
    };
    let Some(runtime) = async_runtime(tokio::runtime::Builder::new_multi_thread()) else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(run(config, bind_env, request_log)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Store(err)) => {
            eprintln!("yoi: cannot open the data directory's store: {err}");
            ExitCode::from(3)
        }
        Err(Failure::Other(err)) => {
            eprintln!("yoi: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The Tokio runtime from `builder`, or `None` after saying why not.
fn async_runtime(mut builder: tokio::runtime::Builder) -> Option<tokio::runtime::Runtime> {
    match builder.enable_all().build() {
        Ok(runtime) => Some(runtime),
        Err(err) => {
            eprintln!("yoi: cannot start the async runtime: {err}");
            None
        }
    }
}

/// `yoi chat`: warnings only, on stderr, so that stdout is the conversation.
fn chat(args: yoi::chat::ChatArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .init();
    let Some(runtime) = async_runtime(tokio::runtime::Builder::new_current_thread()) else {
        return ExitCode::FAILURE;
    };
    let result = runtime.block_on(yoi::chat::run(args));
    // The terminal reader blocks in a thread until the next line; do not
    // wait for it.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("yoi chat: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `yoi runtime serve`: the workspace server's configuration narrowed to
/// one embedded Runtime with the given id, on the runtime port.
fn load_runtime(args: RuntimeServeArgs) -> Result<ServerConfig, Box<dyn std::error::Error>> {
    let mut file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    file.runtimes = vec![RuntimeFileConfig {
        id: args.id,
        kind: RuntimeKind::Embedded,
        display_name: None,
        workspace: None,
        store: None,
        url: None,
        token_env: None,
    }];
    let bind = args.bind.or_else(|| DEFAULT_RUNTIME_BIND.parse().ok());
    let overrides = Overrides {
        bind,
        workspace: None,
        token_file: args.token_file,
        data_dir: data_dir(args.data_dir, args.memory),
        memory: args.memory,
        token: std::env::var("YOI_RUNTIME_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .map(SecretString::from),
    };
    Ok(file.resolve(overrides, |var| std::env::var(var).ok())?)
}

/// `--bind`: `IP:PORT`, or `localhost:PORT` for 127.0.0.1 (never a name
/// looked up elsewhere).
fn parse_bind(value: &str) -> Result<SocketAddr, String> {
    if let Some(port) = value.strip_prefix("localhost:") {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("`{port}` is not a port (0 to 65535)"))?;
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    value
        .parse()
        .map_err(|_| "expected IP:PORT (127.0.0.1:7840, [::1]:7840) or localhost:PORT".to_owned())
}

/// The default address of `yoi runtime serve`.
const DEFAULT_RUNTIME_BIND: &str = "127.0.0.1:7841";

/// `--data-dir`, else (without `--memory`) the platform data directory.
fn data_dir(given: Option<PathBuf>, memory: bool) -> Option<PathBuf> {
    match (given, memory) {
        (Some(dir), _) => Some(dir),
        (None, true) => None,
        (None, false) => {
            let default = platform_data_dir();
            if default.is_none() {
                eprintln!(
                    "yoi: no data directory (set --data-dir or HOME); Workers are kept in memory only"
                );
            }
            default
        }
    }
}

fn load(args: ServeArgs) -> Result<ServerConfig, Box<dyn std::error::Error>> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let data_dir = data_dir(args.data_dir, args.memory);
    let overrides = Overrides {
        bind: args.bind,
        workspace: args.workspace,
        token_file: args.token_file,
        data_dir,
        memory: args.memory,
        token: std::env::var("YOI_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .map(SecretString::from),
    };
    Ok(file.resolve(overrides, |var| std::env::var(var).ok())?)
}

/// `yoi backup`: one line per Runtime copied on stdout; exit 2 when the
/// destination is in the way or there is nothing to copy, 3 when a store
/// cannot be read or copied.
fn backup(args: BackupArgs) -> ExitCode {
    let Some(data_dir) = args.data_dir.or_else(platform_data_dir) else {
        eprintln!("yoi: no data directory (set --data-dir or HOME)");
        return ExitCode::from(2);
    };
    match yoi::backup::backup(&data_dir, &args.to) {
        Ok(runtime_ids) => {
            for runtime_id in runtime_ids {
                println!("backed up runtime '{runtime_id}'");
            }
            ExitCode::SUCCESS
        }
        Err(err @ yoi::backup::BackupError::Usage(_)) => {
            eprintln!("yoi: {err}");
            ExitCode::from(2)
        }
        Err(err) => {
            eprintln!("yoi: cannot back up: {err}");
            ExitCode::from(3)
        }
    }
}

/// The platform's data directory for yoi: `$XDG_DATA_HOME/yoi`, else
/// `~/.local/share/yoi`.
fn platform_data_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".local").join("share"))
        })?;
    Some(base.join("yoi"))
}

/// Why `yoi serve` stopped: the exit code says which.
enum Failure {
    /// A store cannot be opened (damaged, newer schema, not writable): 3.
    Store(Box<dyn std::error::Error>),
    /// Anything else (the address is taken, ...): 1.
    Other(Box<dyn std::error::Error>),
}

async fn run(
    config: ServerConfig,
    bind_env: &str,
    request_log: Option<&'static dyn RequestLog>,
) -> Result<(), Failure> {
    let bind = config.bind;
    let token_required = config.token.is_some();
    let assembly = build(config).await.map_err(|err| match err {
        WiringError::Store { .. }
        | WiringError::Embedded(yoi_runtime_embedded::ConfigError::Store(_)) => {
            Failure::Store(err.into())
        }
        other => Failure::Other(other.into()),
    })?;
    let listener = yoi::listen::listen(bind).map_err(|err| {
        Failure::Other(
            format!(
                "cannot listen on {bind}: {err} (choose another address with --bind, \
                 or set {})",
                bind_env
            )
            .into(),
        )
    })?;
    let address = listener
        .local_addr()
        .map_err(|e| Failure::Other(e.into()))?;
    tracing::info!(address = %address, "listening");
    tracing::info!("Console: http://{address}/");
    tracing::info!("API: http://{address}/api/runtimes");
    tracing::info!("OpenAPI document: http://{address}/api/openapi.json");
    if token_required {
        tracing::info!(
            "a token is required: sign in to the console with the token from --token-file \
             (or the token variable); API clients send `Authorization: Bearer <token>`"
        );
    }
    let state = match request_log {
        Some(log) => assembly.state.clone().with_request_log(log),
        None => assembly.state.clone(),
    };
    let served = serve(listener, state, shutdown_signal()).await;
    // Requests are done: end running turns and let the stores write.
    assembly.shutdown().await;
    tracing::info!("stopped");
    served.map_err(|e| Failure::Other(e.into()))
}

/// The exit code after a second SIGINT or SIGTERM cut a shutdown short.
const FORCED_EXIT: i32 = 130;

/// Resolves on the first SIGINT or (on Unix) SIGTERM, which starts a
/// graceful shutdown; a second one while it runs exits at once (with
/// [`FORCED_EXIT`]). What was answered is durable already, so stopping
/// early loses no accepted input; it cuts running turns off as `kill -9`
/// would, and recovery ends them `failed` at the next start.
async fn shutdown_signal() {
    stop_signal().await;
    // Listening for the second signal starts before the shutdown does.
    let second = stop_signal();
    tracing::info!(
        "stopping: in-flight requests may finish during the grace period; \
         a second Ctrl-C or SIGTERM stops at once"
    );
    tokio::spawn(async move {
        second.await;
        tracing::warn!("a second stop signal: stopping at once");
        std::process::exit(FORCED_EXIT);
    });
}

/// Resolves on SIGINT or (on Unix) SIGTERM received after this call
/// returns (the handlers are in place before the future is polled).
#[cfg(unix)]
fn stop_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        // A signal that cannot be listened for never arrives.
        let wait = |stream: std::io::Result<tokio::signal::unix::Signal>| async move {
            match stream {
                Ok(mut stream) => {
                    stream.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(interrupt) => {}
            () = wait(terminate) => {}
        }
    }
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
fn stop_signal() -> impl Future<Output = ()> + Send + 'static {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
