//! Browser defences that hold with or without a token: the `Host`
//! allow-list (DNS rebinding) and the refusal of cross-site requests that
//! change state (CSRF).
//!
//! Both run before authentication, on every route.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};

use yoi_runtime_api::RuntimeError;

use crate::error::ApiError;
use crate::extract::is_json;
use crate::state::AppState;

/// The request's `Host` (HTTP/1.1), or its URI's authority.
fn request_host(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
}

/// Both defences, in one check: the `Host` first, then cross-site
/// requests.
pub(crate) fn guard(state: &AppState, request: &Request) -> Result<(), ApiError> {
    check_host(state, request)?;
    refuse_cross_site(state, request)
}

/// Refuses requests whose `Host` the policy does not allow.
fn check_host(state: &AppState, request: &Request) -> Result<(), ApiError> {
    let policy = state.host_policy();
    let allowed = match request_host(request) {
        Some(host) => policy.allows(host),
        // Without any Host there is nothing a rebinding page could have set.
        None => true,
    };
    if !allowed {
        return Err(RuntimeError::HostNotAllowed.into());
    }
    Ok(())
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
fn refuse_cross_site(state: &AppState, request: &Request) -> Result<(), ApiError> {
    if changes_state(request.method()) {
        let headers = request.headers();
        let origin = origin_allowed(headers, state);
        if origin == Some(false) {
            return Err(cross_site("the request's Origin is not this server's"));
        }
        let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        if fetch_site == Some("cross-site") && origin.is_none() {
            return Err(cross_site("the browser marked the request cross-site"));
        }
        if let Some(content_type) = headers.get(header::CONTENT_TYPE)
            && !is_json(content_type.to_str().ok())
        {
            return Err(RuntimeError::UnsupportedMediaType.into());
        }
    }
    Ok(())
}

pub(crate) fn cross_site(reason: &str) -> ApiError {
    RuntimeError::CrossSiteRequest {
        reason: reason.to_owned(),
    }
    .into()
}
