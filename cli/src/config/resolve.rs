//! Checks and conversions from the file's values to what the server takes:
//! origins, host names, connection limits, the token file and profiles.

use std::path::Path;
use std::time::Duration;

use axum::http::HeaderValue;
use secrecy::SecretString;
use yoi_runtime_embedded::backend::OpenAiConfig;
use yoi_runtime_embedded::{BackendConfig, ProfileConfig};
use yoi_workspace_server::{ConnectionLimits, FailedAuthLimits};

use super::{BackendKind, ConfigError, DEFAULT_OPENAI_TIMEOUT_MS, LimitsConfig, ProfileFileConfig};

/// An origin is a scheme, a host and an optional port: nothing else.
pub(super) fn parse_origin(origin: String) -> Result<HeaderValue, ConfigError> {
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
pub(super) fn connection_limits(limits: &LimitsConfig) -> Result<ConnectionLimits, ConfigError> {
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

/// `[limits]`'s wrong-token keys over the defaults.
pub(super) fn failed_auth_limits(limits: &LimitsConfig) -> Result<FailedAuthLimits, ConfigError> {
    let defaults = FailedAuthLimits::default();
    let resolved = FailedAuthLimits {
        burst: limits.failed_auth_burst.unwrap_or(defaults.burst),
        refill: limits
            .failed_auth_refill_ms
            .map_or(defaults.refill, Duration::from_millis),
    };
    if resolved.refill.is_zero() {
        return Err(ConfigError::Limit {
            key: "limits.failed_auth_refill_ms",
            message: "must be greater than 0",
        });
    }
    Ok(resolved)
}

/// An `allowed_hosts` entry: a DNS name or IP literal, nothing else.
pub(super) fn parse_host_name(host: String) -> Result<String, ConfigError> {
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

pub(super) fn read_token(path: &Path) -> Result<SecretString, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Token {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    warn_if_others_can_read(path);
    let token = text.trim();
    if token.is_empty() {
        return Err(ConfigError::Token {
            path: path.to_owned(),
            message: "the file is empty".to_owned(),
        });
    }
    Ok(SecretString::from(token.to_owned()))
}

/// Warns (naming no path) when users other than the owner may read the
/// token file, as `ssh` does for a private key; the server still starts.
fn warn_if_others_can_read(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(metadata) = std::fs::metadata(path) {
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    mode = %format_args!("{mode:o}"),
                    "other users of this machine can read the token file; `chmod 600` it"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

impl ProfileFileConfig {
    pub(super) fn resolve(
        self,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<ProfileConfig, ConfigError> {
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
