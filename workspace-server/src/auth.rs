//! The optional bearer token on `/api`.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use yoi_runtime_api::RuntimeError;

use crate::error::ApiError;
use crate::state::AppState;

/// The credentials of a `Bearer` authorization header. The scheme is
/// case-insensitive (RFC 9110, section 11.1), so `bearer x` works too.
fn bearer_credentials(header: &str) -> Option<&str> {
    let (scheme, credentials) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim_start_matches(' '))
}

/// Lets the request through when no token is configured, or when it carries
/// `Authorization: Bearer <token>`; compared in constant time.
pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(token) = state.token() {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_credentials)
            .unwrap_or("");
        let expected = token.expose_secret().as_bytes();
        if !bool::from(presented.as_bytes().ct_eq(expected)) {
            return Err(RuntimeError::Unauthorized.into());
        }
    }
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::bearer_credentials;

    #[test]
    fn the_scheme_is_case_insensitive_and_the_token_is_not() {
        for header in ["Bearer t0k", "bearer t0k", "BEARER t0k", "bEaReR  t0k"] {
            assert_eq!(bearer_credentials(header), Some("t0k"), "{header}");
        }
        assert_eq!(bearer_credentials("Bearer T0K"), Some("T0K"));
        for header in ["Basic t0k", "Bearert0k", "t0k", ""] {
            assert_eq!(bearer_credentials(header), None, "{header}");
        }
    }
}
