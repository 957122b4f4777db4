//! Browser defences that hold with or without a token: the `Host`
//! allow-list (DNS rebinding) and the refusal of cross-site requests that
//! change state (CSRF).
//!
//! Both run before authentication, on every route.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;

use yoi_runtime_api::RuntimeError;

use crate::error::ApiError;
use crate::extract::is_json;
use crate::state::AppState;

/// Which `Host` names the server answers for.
///
/// **Loopback names (`localhost`, `*.localhost`, `127.0.0.0/8`, `[::1]`)
/// are always allowed**: a rebinding page cannot make a browser send them.
/// A server bound to loopback answers those and the listed names only; a
/// server bound elsewhere (which always has a token) answers any name
/// unless names are listed.
#[derive(Clone, Debug, Default)]
pub struct HostPolicy {
    names: Arc<[String]>,
    loopback_bind: bool,
}

impl HostPolicy {
    /// A policy allowing `names` (host names without a port, any case) and
    /// the loopback names.
    pub fn new(names: impl IntoIterator<Item = String>) -> Self {
        Self {
            names: names
                .into_iter()
                .map(|name| name.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            loopback_bind: false,
        }
    }

    /// The same policy for a server listening on `addr`.
    #[must_use]
    pub fn bound_to(mut self, addr: SocketAddr) -> Self {
        self.loopback_bind = addr.ip().is_loopback();
        self
    }

    /// Whether a request naming `host` (a `Host` header value, port
    /// optional) is answered.
    pub fn allows(&self, host: &str) -> bool {
        if !self.loopback_bind && self.names.is_empty() {
            return true;
        }
        let name = host_name(host);
        is_loopback_name(&name) || self.names.contains(&name)
    }
}

/// The name part of a `Host` value, lower-cased, without port or final dot.
fn host_name(host: &str) -> String {
    let name = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn is_loopback_name(name: &str) -> bool {
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    let literal = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    literal.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The request's `Host` (HTTP/1.1), or its URI's authority.
fn request_host(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
}

/// Refuses requests whose `Host` the policy does not allow.
pub(crate) async fn check_host(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let policy = state.host_policy();
    let allowed = match request_host(&request) {
        Some(host) => policy.allows(host),
        // Without any Host there is nothing a rebinding page could have set.
        None => true,
    };
    if !allowed {
        return Err(RuntimeError::HostNotAllowed.into());
    }
    Ok(next.run(request).await)
}

/// Whether `method` may change state.
pub(crate) fn changes_state(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Whether the request's `Origin` is this server's own or one allowed by
/// CORS. `None` when the request has no `Origin`.
pub(crate) fn origin_allowed(headers: &HeaderMap, state: &AppState) -> Option<bool> {
    let origin = headers.get(header::ORIGIN)?;
    if state.cors_allowed_origins().contains(origin) {
        return Some(true);
    }
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return Some(false);
    };
    let origin = origin.to_str().unwrap_or("");
    let same = ["http://", "https://"]
        .iter()
        .any(|scheme| origin.strip_prefix(scheme) == Some(host));
    Some(same)
}

/// Refuses state-changing requests from other sites: an `Origin` that is
/// neither this server nor a CORS-allowed origin, a browser's
/// `Sec-Fetch-Site: cross-site` without such an origin, or a body type other
/// than JSON (which a cross-site form or `no-cors` fetch could send without
/// a preflight), also on bodiless routes.
pub(crate) async fn refuse_cross_site(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if changes_state(request.method()) {
        let headers = request.headers();
        let origin = origin_allowed(headers, &state);
        if origin == Some(false) {
            return Err(cross_site("the request's Origin is not this server's"));
        }
        let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        if fetch_site == Some("cross-site") && origin.is_none() {
            return Err(cross_site("the browser marked the request cross-site"));
        }
        if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
            if !is_json(content_type.to_str().ok()) {
                return Err(RuntimeError::UnsupportedMediaType.into());
            }
        }
    }
    Ok(next.run(request).await)
}

pub(crate) fn cross_site(reason: &str) -> ApiError {
    RuntimeError::CrossSiteRequest {
        reason: reason.to_owned(),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> HostPolicy {
        HostPolicy::new(["yoi.example.com".to_owned()])
            .bound_to(SocketAddr::from(([127, 0, 0, 1], 7840)))
    }

    #[test]
    fn a_loopback_bind_answers_loopback_names_and_listed_ones() {
        let policy = loopback();
        for host in [
            "localhost",
            "localhost:7840",
            "LOCALHOST.",
            "app.localhost:1",
            "127.0.0.1:7840",
            "127.9.8.7",
            "[::1]:7840",
            "[::1]",
            "yoi.example.com",
            "Yoi.Example.Com:443",
        ] {
            assert!(policy.allows(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:7840",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "10.0.0.1:7840",
            "[::2]:7840",
            "example.com",
            "",
        ] {
            assert!(!policy.allows(host), "{host}");
        }
    }

    #[test]
    fn other_binds_answer_any_name_unless_names_are_listed() {
        let any = HostPolicy::new([]).bound_to(SocketAddr::from(([0, 0, 0, 0], 7840)));
        assert!(any.allows("evil.example"));
        let listed = HostPolicy::new(["yoi.lan".to_owned()])
            .bound_to(SocketAddr::from(([0, 0, 0, 0], 7840)));
        assert!(listed.allows("yoi.lan:7840"));
        assert!(listed.allows("localhost:7840"));
        assert!(!listed.allows("evil.example"));
    }
}
