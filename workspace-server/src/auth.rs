//! Authentication on `/api`: the optional bearer token, or a session cookie
//! obtained with it (see [`crate::session`]).

use std::net::IpAddr;

use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use yoi_runtime_api::RuntimeError;

use crate::error::ApiError;
use crate::guard::{changes_state, cross_site, origin_allowed};
use crate::state::AppState;
use crate::throttle::ClientAddress;

/// The header the console sends on state-changing requests: proof, for a
/// request authenticated by cookie, that it is not a cross-site form. A
/// cross-site page cannot send it without a CORS preflight.
pub const CSRF_HEADER: &str = "x-yoi-csrf";

/// The credentials of a `Bearer` authorization header. The scheme is
/// case-insensitive (RFC 9110, section 11.1), so `bearer x` works too.
fn bearer_credentials(header: &str) -> Option<&str> {
    // A byte search: `split_once(' ')` sets up `str`'s general searcher,
    // several times the cost of a loop on a scheme this short.
    let space = header.bytes().position(|byte| byte == b' ')?;
    let (scheme, credentials) = (&header[..space], &header[space + 1..]);
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim_start_matches(' '))
}

/// Whether the request's `Authorization` header carries the token, compared
/// in constant time; `None` without the header or without a token. A wrong
/// token spends one of the client address's attempts, and an address with
/// none left is refused without its token being compared (`throttle.rs`).
pub(crate) fn bearer_is_valid(
    state: &AppState,
    client: IpAddr,
    headers: &HeaderMap,
) -> Result<Option<bool>, ApiError> {
    let (Some(token), Some(value)) = (state.token(), headers.get(header::AUTHORIZATION)) else {
        return Ok(None);
    };
    let presented = value
        .to_str()
        .ok()
        .and_then(bearer_credentials)
        .unwrap_or("");
    guess(state, client, presented, token).map(Some)
}

/// Whether `presented` is `secret`, in time that depends only on their
/// lengths (as `subtle`'s slice comparison, whose length check returns at
/// once too): eight bytes at a time, then the rest, so that a request
/// spends one constant-time comparison per word rather than per byte.
fn same_secret(presented: &[u8], secret: &[u8]) -> bool {
    if presented.len() != secret.len() {
        return false;
    }
    let mut presented_words = presented.chunks_exact(8);
    let mut secret_words = secret.chunks_exact(8);
    let mut same = subtle::Choice::from(1);
    for (a, b) in (&mut presented_words).zip(&mut secret_words) {
        let word = |bytes: &[u8]| u64::from_ne_bytes(bytes.try_into().unwrap_or([0; 8]));
        same &= word(a).ct_eq(&word(b));
    }
    same &= presented_words.remainder().ct_eq(secret_words.remainder());
    bool::from(same)
}

/// Compares a presented token with `token` under the client address's
/// wrong-token budget.
pub(crate) fn guess(
    state: &AppState,
    client: IpAddr,
    presented: &str,
    token: &SecretString,
) -> Result<bool, ApiError> {
    state
        .auth_throttle()
        .attempt(client, || {
            same_secret(presented.as_bytes(), token.expose_secret().as_bytes())
        })
        .map_err(|wait| {
            RuntimeError::TooManyAttempts {
                // Whole seconds, rounded up, at least 1.
                retry_after_secs: (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1),
            }
            .into()
        })
}

/// Lets the request through when no token is configured, when it carries
/// `Authorization: Bearer <token>`, or when its cookie names a session. A
/// state-changing request authenticated by cookie must also show it comes
/// from this server's pages: a same-origin `Origin`, or [`CSRF_HEADER`].
pub fn require_token(state: &AppState, request: &Request) -> Result<(), ApiError> {
    authenticate(
        state,
        ClientAddress::of(request.extensions()),
        request.method(),
        request.headers(),
    )
}

/// The check of [`require_token`], for handlers outside its layer.
pub(crate) fn authenticate(
    state: &AppState,
    client: IpAddr,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    if state.token().is_none() {
        return Ok(());
    }
    match bearer_is_valid(state, client, headers)? {
        Some(true) => Ok(()),
        Some(false) => Err(RuntimeError::Unauthorized.into()),
        None => {
            if !state.sessions().is_signed_in(headers) {
                return Err(RuntimeError::Unauthorized.into());
            }
            let proven =
                origin_allowed(headers, state) == Some(true) || headers.contains_key(CSRF_HEADER);
            if changes_state(method) && !proven {
                return Err(cross_site(
                    "a request signed in by cookie must send a same-origin Origin or the X-Yoi-Csrf header",
                ));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{bearer_credentials, same_secret};

    #[test]
    fn a_secret_matches_only_itself() {
        let secret: Vec<u8> = (0..=40u8).map(|i| b'a' + i % 26).collect();
        // Every length around a word's edge, and a difference at every
        // position of each.
        for len in 0..=secret.len() {
            let secret = &secret[..len];
            assert!(same_secret(secret, secret));
            for at in 0..len {
                let mut other = secret.to_vec();
                other[at] ^= 0x20;
                assert!(!same_secret(&other, secret), "len {len}, at {at}");
            }
            assert!(!same_secret(&secret[..len.saturating_sub(1)], secret) || len == 0);
            let mut longer = secret.to_vec();
            longer.push(b'x');
            assert!(!same_secret(&longer, secret));
        }
    }

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
