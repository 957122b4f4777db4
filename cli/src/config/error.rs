//! Why configuration failed, and where in the file.

use std::net::SocketAddr;
use std::path::PathBuf;

use yoi_runtime_api::{ProfileName, RuntimeId};

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
    /// A `trusted_proxies` entry is neither an address nor a network.
    #[error("trusted_proxies: '{entry}' is not an IP address or network like \"10.0.0.0/8\"")]
    TrustedProxy {
        /// The entry as written.
        entry: String,
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

/// Where byte `offset` of `text` is, for people: `line L, column C`, and
/// the key written there (under the table it is in), if any.
pub(super) fn place(text: &str, offset: usize) -> String {
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
pub(super) fn one_line(message: &str) -> String {
    message
        .trim()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ")
}
