//! Configuration: the TOML file, command-line flags and `YOI_*` environment
//! variables, resolved into what the server needs. See `docs/configuration.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::HeaderValue;
use secrecy::SecretString;
use serde::Deserialize;
use yoi_runtime_api::ProfileName;
use yoi_runtime_embedded::{EmbeddedOptions, Limits};
use yoi_runtime_local_compat::{DEFAULT_DISPLAY_NAME as LOCAL_COMPAT_NAME, LOCAL_COMPAT_ID};

use yoi_runtime_api::RuntimeId;
use yoi_workspace_server::state::DEFAULT_MAX_BODY_BYTES;
use yoi_workspace_server::{ConnectionLimits, FailedAuthLimits, TrustedProxies};

mod error;
mod resolve;

pub use error::ConfigError;
use error::{one_line, place};
use resolve::{connection_limits, failed_auth_limits, parse_host_name, parse_origin, read_token};

/// The address the server binds when nothing else is said.
pub const DEFAULT_BIND: &str = "127.0.0.1:7840";
const DEFAULT_OPENAI_TIMEOUT_MS: u64 = 60_000;

/// The config file, as written. Unknown keys are errors that name the key.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The profile Workers get when created without one.
    pub default_profile: Option<ProfileName>,
    /// A file holding the bearer token for `/api`.
    pub token_file: Option<PathBuf>,
    /// Browser origins allowed cross-origin access, e.g.
    /// `"http://localhost:5173"`. None by default.
    #[serde(default)]
    pub cors_allowed_origins: Vec<String>,
    /// Host names (no scheme, no port) the server answers for besides the
    /// loopback names, e.g. `"yoi.lan"`. See `HostPolicy`.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Reverse proxies (addresses or networks, e.g. `"10.0.0.0/8"`) whose
    /// `X-Forwarded-For` names the client for the wrong-token throttle.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Where durable Runtimes keep their data (`--data-dir` overrides).
    pub data_dir: Option<PathBuf>,
    /// Bounds.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Profiles besides the builtin `default`.
    #[serde(default)]
    pub profiles: Vec<ProfileFileConfig>,
    /// The Runtimes to host. None means the defaults: `backend-internal`
    /// (embedded), plus `local-compat` when a workspace is given.
    #[serde(default)]
    pub runtimes: Vec<RuntimeFileConfig>,
}

/// What kind of Runtime a `[[runtimes]]` entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeKind {
    /// An in-process Runtime with the configured profiles and limits.
    Embedded,
    /// A read-only Runtime over a workspace's record files.
    LocalCompat,
    /// A Runtime served by another process (`yoi runtime serve`).
    Remote,
}

/// Where an embedded Runtime keeps its Workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// A SQLite file in the data directory: Workers survive restarts.
    Sqlite,
    /// Memory only: Workers are gone when the process ends.
    Memory,
}

/// `[[runtimes]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeFileConfig {
    /// The Runtime's id, unique in this server.
    pub id: RuntimeId,
    /// `embedded` or `local_compat`.
    pub kind: RuntimeKind,
    /// A name for people.
    pub display_name: Option<String>,
    /// local_compat: the workspace folder (default: `--workspace`).
    pub workspace: Option<PathBuf>,
    /// embedded: `sqlite` (the default when there is a data directory) or
    /// `memory`.
    pub store: Option<StoreKind>,
    /// remote: the runtime server's address, e.g. `http://127.0.0.2:7841`.
    pub url: Option<String>,
    /// remote: the environment variable holding the runtime server's token.
    pub token_env: Option<String>,
}

impl std::fmt::Debug for RuntimeFileConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeFileConfig")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("display_name", &self.display_name)
            .field("workspace", &path_presence(self.workspace.as_deref()))
            .field("store", &self.store)
            .field("url", &self.url.as_ref().map(|_| "<url>"))
            .field("token_env", &self.token_env)
            .finish()
    }
}

/// Where an embedded Runtime keeps its Workers, resolved.
#[non_exhaustive]
pub enum StoreConfig {
    /// In memory only.
    Memory,
    /// In this SQLite file (created with its folder when missing).
    Sqlite {
        /// The file.
        path: PathBuf,
        /// A commit taking longer makes the store count as stalled.
        stall_after: Duration,
    },
}

impl std::fmt::Debug for StoreConfig {
    /// Says which store, never where.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Memory => f.write_str("Memory"),
            Self::Sqlite { stall_after, .. } => f
                .debug_struct("Sqlite")
                .field("path", &format_args!("<path>"))
                .field("stall_after", stall_after)
                .finish(),
        }
    }
}

/// One Runtime the server will host, resolved.
#[non_exhaustive]
pub enum RuntimeConfig {
    /// An embedded Runtime.
    Embedded {
        /// Its options.
        options: EmbeddedOptions,
        /// Where it keeps its Workers.
        store: StoreConfig,
    },
    /// A Runtime on another host.
    Remote {
        /// Its id, which the peer must serve.
        runtime_id: RuntimeId,
        /// A name for people; the peer's own when absent.
        display_name: Option<String>,
        /// The runtime server's address.
        url: String,
        /// Its token.
        token: Option<SecretString>,
    },
    /// A local-compat Runtime.
    LocalCompat {
        /// Its id.
        runtime_id: RuntimeId,
        /// Its name for people.
        display_name: String,
        /// The workspace whose records it shows.
        workspace: PathBuf,
    },
}

impl std::fmt::Debug for RuntimeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Embedded { options, store } => f
                .debug_struct("Embedded")
                .field("options", options)
                .field("store", store)
                .finish(),
            Self::Remote { runtime_id, .. } => f
                .debug_struct("Remote")
                .field("runtime_id", runtime_id)
                .finish_non_exhaustive(),
            Self::LocalCompat {
                runtime_id,
                display_name,
                workspace,
            } => f
                .debug_struct("LocalCompat")
                .field("runtime_id", runtime_id)
                .field("display_name", display_name)
                .field("workspace", &path_presence(Some(workspace)))
                .finish(),
        }
    }
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// The largest input text.
    pub max_input_bytes: Option<u64>,
    /// The largest request body.
    pub max_body_bytes: Option<usize>,
    /// Stopped Workers kept readable per embedded Runtime.
    pub max_stopped_workers: Option<usize>,
    /// Stopped Workers are deleted this many seconds after they stopped.
    pub max_stopped_age_secs: Option<u64>,
    /// Workers an embedded Runtime with a durable store keeps in memory.
    pub max_resident_workers: Option<usize>,
    /// `client_input_id`s remembered per Worker, so a retry is recognised.
    pub max_remembered_client_ids: Option<usize>,
    /// Bytes of transcript kept in memory per Worker.
    pub max_transcript_bytes: Option<usize>,
    /// Bytes of events kept per Worker.
    pub max_event_log_bytes: Option<usize>,
    /// Workers that are not stopped, per Runtime.
    pub max_live_workers: Option<usize>,
    /// Bytes of transcripts and events all Workers of a Runtime keep in
    /// memory.
    pub max_retained_bytes: Option<usize>,
    /// Time to send a request's headers, and the keep-alive idle time.
    pub header_timeout_ms: Option<u64>,
    /// The most bytes of request headers.
    pub max_header_bytes: Option<usize>,
    /// The most connections served at once.
    pub max_connections: Option<usize>,
    /// Connections past `max_connections` that answer `/healthz` only.
    pub reserve_connections: Option<usize>,
    /// How long requests may finish after SIGTERM.
    pub shutdown_grace_ms: Option<u64>,
    /// How long a write to a client that does not read may stay pending.
    pub write_timeout_ms: Option<u64>,
    /// Wrong tokens a client address may send in a row (0: no throttle).
    pub failed_auth_burst: Option<u32>,
    /// How long until a client address gets one attempt back.
    pub failed_auth_refill_ms: Option<u64>,
    /// How long a SQLite store's commit may take before the store counts
    /// as stalled.
    pub store_stall_ms: Option<u64>,
}

/// Which backend a profile uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// The builtin offline echo backend.
    Echo,
    /// An OpenAI-compatible endpoint.
    Openai,
}

/// `[[profiles]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFileConfig {
    /// The profile's name.
    pub name: ProfileName,
    /// `echo` or `openai`.
    pub backend: BackendKind,
    /// echo: how long one turn takes.
    pub echo_delay_ms: Option<u64>,
    /// openai: the API root.
    pub base_url: Option<String>,
    /// openai: the model.
    pub model: Option<String>,
    /// openai: the environment variable that holds the key.
    pub api_key_env: Option<String>,
    /// The system prompt.
    pub system_prompt: Option<String>,
    /// openai: the request timeout.
    pub timeout_ms: Option<u64>,
    /// openai: sent as `max_tokens`.
    pub max_tokens: Option<u32>,
    /// openai: the longest reply kept.
    pub max_reply_bytes: Option<usize>,
    /// openai: how long a whole turn may take.
    pub max_turn_ms: Option<u64>,
}

/// What the server runs with.
pub struct ServerConfig {
    /// Where to listen.
    pub bind: SocketAddr,
    /// The bearer token for `/api`, if any.
    pub token: Option<SecretString>,
    /// The request body limit.
    pub max_body_bytes: usize,
    /// Connection bounds and the shutdown grace period.
    pub connection_limits: ConnectionLimits,
    /// The wrong-token budget per client address.
    pub failed_auth_limits: FailedAuthLimits,
    /// Origins allowed cross-origin access; empty means no CORS headers.
    pub cors_allowed_origins: Vec<HeaderValue>,
    /// Host names answered besides the loopback names.
    pub allowed_hosts: Vec<String>,
    /// Reverse proxies whose forwarding headers name the client.
    pub trusted_proxies: TrustedProxies,
    /// The Runtimes, in registration order.
    pub runtimes: Vec<RuntimeConfig>,
}

/// Everything from the command line and environment that overrides the file.
#[derive(Default)]
pub struct Overrides {
    /// `--bind` / `YOI_BIND`.
    pub bind: Option<SocketAddr>,
    /// `--workspace` / `YOI_WORKSPACE`.
    pub workspace: Option<PathBuf>,
    /// `--token-file` / `YOI_TOKEN_FILE`.
    pub token_file: Option<PathBuf>,
    /// `YOI_TOKEN`: the token itself.
    pub token: Option<SecretString>,
    /// `--data-dir` / `YOI_DATA_DIR`: where durable Runtimes keep their data.
    pub data_dir: Option<PathBuf>,
    /// `--memory`: every embedded Runtime keeps its Workers in memory only.
    pub memory: bool,
}

impl FileConfig {
    /// Parses TOML text.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: match e.span() {
                Some(span) => format!("{}: {}", place(text, span.start), one_line(e.message())),
                None => one_line(e.message()),
            },
        })
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Resolves the file and overrides into a [`ServerConfig`]; `env` looks
    /// up environment variables (API keys).
    pub fn resolve(
        self,
        overrides: Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ServerConfig, ConfigError> {
        let bind = overrides.bind.unwrap_or_else(|| {
            DEFAULT_BIND
                .parse()
                .unwrap_or_else(|_| unreachable!("valid address"))
        });
        let token = match (overrides.token, overrides.token_file.or(self.token_file)) {
            (Some(token), _) => Some(token),
            (None, Some(path)) => Some(read_token(&path)?),
            (None, None) => None,
        };
        if token.is_none() && !bind.ip().is_loopback() {
            return Err(ConfigError::PublicWithoutToken { bind });
        }
        let mut limits = Limits::default();
        if let Some(max) = self.limits.max_input_bytes {
            limits.max_input_bytes = max;
        }
        if let Some(max) = self.limits.max_stopped_workers {
            limits.max_stopped_workers = max;
        }
        if let Some(secs) = self.limits.max_stopped_age_secs {
            limits.max_stopped_age = Some(Duration::from_secs(secs));
        }
        if let Some(max) = self.limits.max_remembered_client_ids {
            limits.max_remembered_client_ids = max;
        }
        if let Some(max) = self.limits.max_transcript_bytes {
            limits.max_transcript_bytes = max;
        }
        if let Some(max) = self.limits.max_event_log_bytes {
            limits.max_event_log_bytes = max;
        }
        if let Some(max) = self.limits.max_live_workers {
            limits.max_live_workers = max;
        }
        if let Some(max) = self.limits.max_retained_bytes {
            limits.max_retained_bytes = max;
        }
        if let Some(max) = self.limits.max_resident_workers {
            limits.max_resident_workers = max;
        }
        let profiles = self
            .profiles
            .into_iter()
            .map(|p| p.resolve(&env))
            .collect::<Result<Vec<_>, _>>()?;
        let mut embedded = EmbeddedOptions {
            profiles,
            limits,
            ..EmbeddedOptions::default()
        };
        if let Some(default) = self.default_profile {
            embedded.default_profile = default;
        }
        // Fail at start, not at the first request.
        yoi_runtime_embedded::EmbeddedRuntime::new(embedded.clone())?;
        let data_dir = if overrides.memory {
            None
        } else {
            overrides.data_dir.or(self.data_dir)
        };
        let stall_after = match self.limits.store_stall_ms {
            None => yoi_runtime_embedded::store::SqliteStore::DEFAULT_STALL_AFTER,
            Some(0) => {
                return Err(ConfigError::Limit {
                    key: "limits.store_stall_ms",
                    message: "must be greater than 0",
                });
            }
            Some(ms) => Duration::from_millis(ms),
        };
        let stores = Stores {
            data_dir,
            stall_after,
        };
        let runtimes =
            resolve_runtimes(self.runtimes, embedded, overrides.workspace, stores, &env)?;
        let cors_allowed_origins = self
            .cors_allowed_origins
            .into_iter()
            .map(parse_origin)
            .collect::<Result<Vec<_>, _>>()?;
        let allowed_hosts = self
            .allowed_hosts
            .into_iter()
            .map(parse_host_name)
            .collect::<Result<Vec<_>, _>>()?;
        let trusted_proxies = TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|err| ConfigError::TrustedProxy { entry: err.entry })?;
        let max_body_bytes = self.limits.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes == 0 {
            // Every request with a body would be refused.
            return Err(ConfigError::Limit {
                key: "limits.max_body_bytes",
                message: "must be greater than 0",
            });
        }
        Ok(ServerConfig {
            bind,
            token,
            max_body_bytes,
            connection_limits: connection_limits(&self.limits)?,
            failed_auth_limits: failed_auth_limits(&self.limits)?,
            cors_allowed_origins,
            allowed_hosts,
            trusted_proxies,
            runtimes,
        })
    }
}

/// The folder of a data directory that holds one folder per Runtime.
pub const RUNTIMES_FOLDER: &str = "runtimes";

/// Where the embedded Runtime `runtime_id` keeps its store in `data_dir`:
/// one file per Runtime, in a folder of its own (ids are safe as folder
/// names: no separators, never `.` or `..`).
pub fn store_path(data_dir: &Path, runtime_id: &RuntimeId) -> PathBuf {
    data_dir
        .join(RUNTIMES_FOLDER)
        .join(runtime_id.as_str())
        .join("yoi.sqlite3")
}

/// Where durable Runtimes keep their stores, and how they are watched.
struct Stores {
    /// None: in memory only.
    data_dir: Option<PathBuf>,
    stall_after: Duration,
}

/// The `[[runtimes]]` entries, or the defaults when there are none.
fn resolve_runtimes(
    entries: Vec<RuntimeFileConfig>,
    embedded: EmbeddedOptions,
    workspace: Option<PathBuf>,
    stores: Stores,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<RuntimeConfig>, ConfigError> {
    let sqlite_at = |id: &RuntimeId| -> Option<StoreConfig> {
        Some(StoreConfig::Sqlite {
            path: store_path(stores.data_dir.as_ref()?, id),
            stall_after: stores.stall_after,
        })
    };
    if entries.is_empty() {
        let store = sqlite_at(&embedded.runtime_id).unwrap_or(StoreConfig::Memory);
        let mut runtimes = vec![RuntimeConfig::Embedded {
            options: embedded,
            store,
        }];
        if let Some(workspace) = workspace {
            runtimes.push(RuntimeConfig::LocalCompat {
                runtime_id: RuntimeId::new(LOCAL_COMPAT_ID)
                    .unwrap_or_else(|_| unreachable!("a valid id")),
                display_name: LOCAL_COMPAT_NAME.to_owned(),
                workspace,
            });
        }
        return Ok(runtimes);
    }
    let mut runtimes = Vec::with_capacity(entries.len());
    for (position, entry) in entries.into_iter().enumerate() {
        let fail = |message: &str| ConfigError::Runtime {
            runtime_id: entry.id.clone(),
            message: message.to_owned(),
        };
        let duplicate = runtimes.iter().any(|r: &RuntimeConfig| match r {
            RuntimeConfig::Embedded { options, .. } => options.runtime_id == entry.id,
            RuntimeConfig::LocalCompat { runtime_id, .. }
            | RuntimeConfig::Remote { runtime_id, .. } => *runtime_id == entry.id,
        });
        if duplicate {
            return Err(fail(&format!(
                "the id is used by an earlier [[runtimes]] entry (entry {} repeats it)",
                position + 1
            )));
        }
        if entry.kind != RuntimeKind::Remote && (entry.url.is_some() || entry.token_env.is_some()) {
            return Err(fail("url and token_env apply only to kind \"remote\""));
        }
        runtimes.push(match entry.kind {
            RuntimeKind::Remote => {
                if entry.workspace.is_some() || entry.store.is_some() {
                    return Err(fail("workspace and store do not apply to kind \"remote\""));
                }
                let url = entry
                    .url
                    .clone()
                    .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
                    .ok_or_else(|| fail("kind \"remote\" needs url, an http(s) address"))?;
                let token = match &entry.token_env {
                    None => None,
                    Some(var) => Some(SecretString::from(
                        env(var).filter(|t| !t.trim().is_empty()).ok_or_else(|| {
                            fail(&format!("environment variable {var} (token_env) is not set"))
                        })?,
                    )),
                };
                RuntimeConfig::Remote {
                    runtime_id: entry.id.clone(),
                    display_name: entry.display_name.clone(),
                    url,
                    token,
                }
            }
            RuntimeKind::Embedded => {
                if entry.workspace.is_some() {
                    return Err(fail("workspace applies only to kind \"local_compat\""));
                }
                let store = match entry.store {
                    Some(StoreKind::Memory) => StoreConfig::Memory,
                    Some(StoreKind::Sqlite) => sqlite_at(&entry.id).ok_or_else(|| {
                        fail("store \"sqlite\" needs a data directory (data_dir, --data-dir), and not --memory")
                    })?,
                    None => sqlite_at(&entry.id).unwrap_or(StoreConfig::Memory),
                };
                let mut options = embedded.clone();
                options.runtime_id = entry.id.clone();
                if let Some(name) = entry.display_name {
                    options.display_name = name;
                }
                RuntimeConfig::Embedded { options, store }
            }
            RuntimeKind::LocalCompat => {
                if entry.store.is_some() {
                    return Err(fail("store applies only to kind \"embedded\""));
                }
                let workspace = entry
                    .workspace
                    .clone()
                    .or_else(|| workspace.clone())
                    .ok_or_else(|| {
                        fail("kind \"local_compat\" needs workspace (or --workspace)")
                    })?;
                RuntimeConfig::LocalCompat {
                    runtime_id: entry.id.clone(),
                    display_name: entry
                        .display_name
                        .unwrap_or_else(|| LOCAL_COMPAT_NAME.to_owned()),
                    workspace,
                }
            }
        });
    }
    Ok(runtimes)
}

/// How a path shows in `Debug`: whether it is set, never where it points.
fn path_presence(path: Option<&Path>) -> Option<&'static str> {
    path.map(|_| "<path>")
}

impl std::fmt::Debug for FileConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileConfig")
            .field("default_profile", &self.default_profile)
            .field("token_file", &path_presence(self.token_file.as_deref()))
            .field("data_dir", &path_presence(self.data_dir.as_deref()))
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("limits", &self.limits)
            .field("profiles", &self.profiles)
            .field("runtimes", &self.runtimes)
            .finish()
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("bind", &self.bind)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("max_body_bytes", &self.max_body_bytes)
            .field("connection_limits", &self.connection_limits)
            .field("failed_auth_limits", &self.failed_auth_limits)
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("runtimes", &self.runtimes)
            .finish()
    }
}

impl std::fmt::Debug for Overrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overrides")
            .field("bind", &self.bind)
            .field("workspace", &path_presence(self.workspace.as_deref()))
            .field("token_file", &path_presence(self.token_file.as_deref()))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("data_dir", &path_presence(self.data_dir.as_deref()))
            .field("memory", &self.memory)
            .finish()
    }
}
