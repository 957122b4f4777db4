//! Configuration: the TOML file, command-line flags and `YOI_*` environment
//! variables, resolved into what the server needs. See `docs/configuration.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::HeaderValue;
use secrecy::SecretString;
use serde::Deserialize;
use yoi_runtime_api::ProfileName;
use yoi_runtime_embedded::backend::OpenAiConfig;
use yoi_runtime_embedded::{BackendConfig, EmbeddedOptions, Limits, ProfileConfig};
use yoi_runtime_local_compat::{DEFAULT_DISPLAY_NAME as LOCAL_COMPAT_NAME, LOCAL_COMPAT_ID};

use yoi_runtime_api::RuntimeId;
use yoi_workspace_server::ConnectionLimits;
use yoi_workspace_server::state::DEFAULT_MAX_BODY_BYTES;

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
    },
}

impl std::fmt::Debug for StoreConfig {
    /// Says which store, never where.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Memory => f.write_str("Memory"),
            Self::Sqlite { .. } => f.write_str("Sqlite { path: <path> }"),
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
    /// Origins allowed cross-origin access; empty means no CORS headers.
    pub cors_allowed_origins: Vec<HeaderValue>,
    /// Host names answered besides the loopback names.
    pub allowed_hosts: Vec<String>,
    /// The Runtimes, in registration order.
    pub runtimes: Vec<RuntimeConfig>,
}

/// Why configuration failed. Messages name keys, files and variables, never
/// secret values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML of the expected shape.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A profile's keys do not fit its backend.
    #[error("profile '{profile}': {message}")]
    Profile {
        /// The profile.
        profile: ProfileName,
        /// What is wrong.
        message: String,
    },
    /// The token file cannot be read or is empty.
    #[error("token file {path}: {message}")]
    Token {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A CORS origin is not `scheme://host[:port]`.
    #[error("allowed_hosts: '{host}' is not a host name (write it without scheme, port or path)")]
    AllowedHost {
        /// The entry as written.
        host: String,
    },
    /// A `[limits]` value is out of range.
    #[error("{key}: {message}")]
    Limit {
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: &'static str,
    },
    /// A `cors_allowed_origins` entry is not an origin.
    #[error("cors_allowed_origins: '{origin}' is not an origin like \"https://host:port\"")]
    CorsOrigin {
        /// The rejected value.
        origin: String,
    },
    /// A non-loopback bind without a token.
    #[error(
        "refusing to listen on {bind} without a token: set token_file, --token-file or YOI_TOKEN"
    )]
    PublicWithoutToken {
        /// The address.
        bind: SocketAddr,
    },
    /// The embedded runtime rejected its options.
    #[error(transparent)]
    Embedded(#[from] yoi_runtime_embedded::ConfigError),
    /// A `[[runtimes]]` entry is wrong.
    #[error("runtime '{runtime_id}': {message}")]
    Runtime {
        /// The entry's id.
        runtime_id: RuntimeId,
        /// What is wrong.
        message: String,
    },
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

/// Where byte `offset` of `text` is, for people: `line L, column C`, and
/// the key written there (under the table it is in), if any.
fn place(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let this_line = text[line_start..].lines().next().unwrap_or("");
    let key = this_line
        .split_once('=')
        .map(|(key, _)| key.trim())
        .filter(|key| !key.is_empty() && !key.starts_with('['));
    let table = text[..line_start].lines().rev().find_map(|l| {
        let l = l.trim();
        l.strip_prefix('[')
            .map(|rest| rest.trim_start_matches('[').trim_end_matches(']').trim())
    });
    let mut place = format!("line {line}, column {column}");
    if let Some(key) = key {
        match table {
            Some(table) => place.push_str(&format!(", key `{table}.{key}`")),
            None => place.push_str(&format!(", key `{key}`")),
        }
    }
    place
}

/// A parser message on one line.
fn one_line(message: &str) -> String {
    message
        .trim()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ")
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
        let runtimes =
            resolve_runtimes(self.runtimes, embedded, overrides.workspace, data_dir, &env)?;
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
        Ok(ServerConfig {
            bind,
            token,
            max_body_bytes: self.limits.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
            connection_limits: connection_limits(&self.limits)?,
            cors_allowed_origins,
            allowed_hosts,
            runtimes,
        })
    }
}

/// The `[[runtimes]]` entries, or the defaults when there are none.
fn resolve_runtimes(
    entries: Vec<RuntimeFileConfig>,
    embedded: EmbeddedOptions,
    workspace: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<RuntimeConfig>, ConfigError> {
    // One file per Runtime; ids are safe as folder names (no separators,
    // never `.` or `..`).
    let sqlite_at = |id: &RuntimeId| -> Option<StoreConfig> {
        Some(StoreConfig::Sqlite {
            path: data_dir
                .as_ref()?
                .join("runtimes")
                .join(id.as_str())
                .join("yoi.sqlite3"),
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

/// An origin is a scheme, a host and an optional port: nothing else.
fn parse_origin(origin: String) -> Result<HeaderValue, ConfigError> {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    let valid = rest.is_some_and(|host| {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
    });
    match (valid, HeaderValue::from_str(&origin)) {
        (true, Ok(value)) => Ok(value),
        _ => Err(ConfigError::CorsOrigin { origin }),
    }
}

/// `[limits]`'s connection keys over the defaults.
fn connection_limits(limits: &LimitsConfig) -> Result<ConnectionLimits, ConfigError> {
    let defaults = ConnectionLimits::default();
    let ms = |value: Option<u64>, default: Duration| value.map_or(default, Duration::from_millis);
    let resolved = ConnectionLimits {
        header_timeout: ms(limits.header_timeout_ms, defaults.header_timeout),
        max_header_bytes: limits.max_header_bytes.unwrap_or(defaults.max_header_bytes),
        max_connections: limits.max_connections.unwrap_or(defaults.max_connections),
        reserve_connections: limits
            .reserve_connections
            .unwrap_or(defaults.reserve_connections),
        shutdown_grace: ms(limits.shutdown_grace_ms, defaults.shutdown_grace),
        write_timeout: ms(limits.write_timeout_ms, defaults.write_timeout),
    };
    if resolved.max_header_bytes < 8192 {
        return Err(ConfigError::Limit {
            key: "limits.max_header_bytes",
            message: "must be at least 8192",
        });
    }
    for (key, zero) in [
        ("limits.max_connections", resolved.max_connections == 0),
        (
            "limits.header_timeout_ms",
            resolved.header_timeout.is_zero(),
        ),
        ("limits.write_timeout_ms", resolved.write_timeout.is_zero()),
    ] {
        if zero {
            return Err(ConfigError::Limit {
                key,
                message: "must be greater than 0",
            });
        }
    }
    Ok(resolved)
}

/// An `allowed_hosts` entry: a DNS name or IP literal, nothing else.
fn parse_host_name(host: String) -> Result<String, ConfigError> {
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if valid {
        Ok(host.to_ascii_lowercase())
    } else {
        Err(ConfigError::AllowedHost { host })
    }
}

fn read_token(path: &Path) -> Result<SecretString, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Token {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(ConfigError::Token {
            path: path.to_owned(),
            message: "the file is empty".to_owned(),
        });
    }
    Ok(SecretString::from(token.to_owned()))
}

impl ProfileFileConfig {
    fn resolve(self, env: &impl Fn(&str) -> Option<String>) -> Result<ProfileConfig, ConfigError> {
        let fail = |message: &str| ConfigError::Profile {
            profile: self.name.clone(),
            message: message.to_owned(),
        };
        let backend = match self.backend {
            BackendKind::Echo => {
                if self.base_url.is_some()
                    || self.model.is_some()
                    || self.api_key_env.is_some()
                    || self.timeout_ms.is_some()
                    || self.max_tokens.is_some()
                    || self.max_reply_bytes.is_some()
                    || self.max_turn_ms.is_some()
                {
                    return Err(fail(
                        "base_url, model, api_key_env, timeout_ms, max_tokens, max_reply_bytes and \
                         max_turn_ms apply only to backend \"openai\"",
                    ));
                }
                BackendConfig::Echo {
                    delay: Duration::from_millis(self.echo_delay_ms.unwrap_or(0)),
                }
            }
            BackendKind::Openai => {
                if self.echo_delay_ms.is_some() {
                    return Err(fail("echo_delay_ms applies only to backend \"echo\""));
                }
                let base_url = self
                    .base_url
                    .clone()
                    .ok_or_else(|| fail("backend \"openai\" needs base_url"))?;
                let model = self
                    .model
                    .clone()
                    .ok_or_else(|| fail("backend \"openai\" needs model"))?;
                let api_key = match &self.api_key_env {
                    None => None,
                    Some(var) => Some(SecretString::from(
                        env(var).filter(|k| !k.trim().is_empty()).ok_or_else(|| {
                            fail(&format!(
                                "environment variable {var} (api_key_env) is not set"
                            ))
                        })?,
                    )),
                };
                let defaults = OpenAiConfig::new(base_url, model);
                BackendConfig::OpenAi(OpenAiConfig {
                    api_key,
                    timeout: Duration::from_millis(
                        self.timeout_ms.unwrap_or(DEFAULT_OPENAI_TIMEOUT_MS),
                    ),
                    max_tokens: self.max_tokens,
                    max_reply_bytes: self.max_reply_bytes.unwrap_or(defaults.max_reply_bytes),
                    max_turn: self
                        .max_turn_ms
                        .map_or(defaults.max_turn, Duration::from_millis),
                    ..defaults
                })
            }
        };
        Ok(ProfileConfig {
            name: self.name,
            system_prompt: self.system_prompt,
            backend,
        })
    }
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
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .field("allowed_hosts", &self.allowed_hosts)
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
