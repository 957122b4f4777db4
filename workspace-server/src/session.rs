//! Browser sessions: the bearer token exchanged for an `HttpOnly;
//! SameSite=Strict` cookie, because `EventSource` cannot send headers.
//!
//! **Sessions live in memory, are bounded in number and age, and are
//! compared in constant time.** A restart signs everyone out; the console
//! then shows its sign-in form again.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "yoi_session";
/// How long a session lasts after sign-in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// The most sessions held at once; signing in past it ends the oldest.
pub const MAX_SESSIONS: usize = 256;

const SECRET_BYTES: usize = 32;

/// The sessions signed in with the token.
pub struct Sessions {
    open: Mutex<Vec<Session>>,
}

struct Session {
    secret: [u8; SECRET_BYTES],
    expires: Instant,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let open = self.open.lock().map_or(0, |open| open.len());
        f.debug_struct("Sessions").field("open", &open).finish()
    }
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            open: Mutex::new(Vec::new()),
        }
    }
}

impl Sessions {
    /// Opens a session and answers the `Set-Cookie` value that carries it,
    /// marked `Secure` when `secure` (see [`arrived_over_https`]).
    pub fn open(&self, secure: bool) -> std::io::Result<HeaderValue> {
        let mut secret = [0u8; SECRET_BYTES];
        getrandom::fill(&mut secret).map_err(|err| std::io::Error::other(err.to_string()))?;
        let now = Instant::now();
        {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            open.retain(|session| session.expires > now);
            if open.len() >= MAX_SESSIONS {
                // Oldest first: sessions are pushed in sign-in order.
                open.remove(0);
            }
            open.push(Session {
                secret,
                expires: now + SESSION_LIFETIME,
            });
        }
        let cookie = format!(
            "{COOKIE_NAME}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
            hex(&secret),
            SESSION_LIFETIME.as_secs(),
            if secure { "; Secure" } else { "" }
        );
        Ok(HeaderValue::try_from(cookie).unwrap_or_else(|_| unreachable!("hex is a valid header")))
    }

    /// Whether the request's cookie names an open session.
    pub fn is_signed_in(&self, headers: &HeaderMap) -> bool {
        let Some(presented) = presented_secret(headers) else {
            return false;
        };
        let now = Instant::now();
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        // Every open session is compared, so timing says nothing of which.
        open.iter().fold(false, |found, session| {
            let same = bool::from(session.secret.ct_eq(&presented));
            found | (same & (session.expires > now))
        })
    }

    /// Ends the session the request's cookie names, if any.
    pub fn close(&self, headers: &HeaderMap) {
        if let Some(presented) = presented_secret(headers) {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            open.retain(|session| !bool::from(session.secret.ct_eq(&presented)));
        }
    }
}

/// The `Set-Cookie` value that removes the cookie (`Secure` as the
/// cookie it removes).
pub fn expired_cookie(secure: bool) -> HeaderValue {
    if secure {
        HeaderValue::from_static(
            "yoi_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0; Secure",
        )
    } else {
        HeaderValue::from_static("yoi_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
    }
}

/// Whether the request reached the server over HTTPS, as the TLS proxy in
/// front of it says (`X-Forwarded-Proto: https`, or `proto=https` in the
/// first element of `Forwarded`). The server itself speaks plain HTTP, so
/// without such a proxy this is false. Trusting the header is safe here:
/// it only adds `Secure` to the cookie, which a client that lies about it
/// merely fails to get back over plain HTTP.
pub fn arrived_over_https(headers: &HeaderMap) -> bool {
    let first = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(',').next())
            .map(str::trim)
    };
    if let Some(proto) = first("x-forwarded-proto") {
        return proto.eq_ignore_ascii_case("https");
    }
    first("forwarded").is_some_and(|element| {
        element.split(';').any(|pair| {
            pair.trim().split_once('=').is_some_and(|(name, value)| {
                name.trim().eq_ignore_ascii_case("proto")
                    && value.trim().trim_matches('"').eq_ignore_ascii_case("https")
            })
        })
    })
}

/// The session secret of the request's `yoi_session` cookie.
fn presented_secret(headers: &HeaderMap) -> Option<[u8; SECRET_BYTES]> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE_NAME)
        .find_map(|(_, value)| unhex(value))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; SECRET_BYTES]> {
    if text.len() != SECRET_BYTES * 2 {
        return None;
    }
    let mut out = [0u8; SECRET_BYTES];
    for (slot, pair) in out.iter_mut().zip(text.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *slot = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(set_cookie: &HeaderValue) -> HeaderMap {
        let pair = set_cookie.to_str().unwrap().split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::try_from(format!("theme=dark; {pair}")).unwrap(),
        );
        headers
    }

    #[test]
    fn a_session_is_signed_in_until_closed() {
        let sessions = Sessions::default();
        let cookie = sessions.open(false).unwrap();
        let text = cookie.to_str().unwrap();
        assert!(text.contains("HttpOnly") && text.contains("SameSite=Strict"));
        let headers = with_cookie(&cookie);
        assert!(sessions.is_signed_in(&headers));
        sessions.close(&headers);
        assert!(!sessions.is_signed_in(&headers));
    }

    #[test]
    fn unknown_and_malformed_cookies_are_not_sessions() {
        let sessions = Sessions::default();
        sessions.open(false).unwrap();
        for cookie in [
            format!("{COOKIE_NAME}={}", "0".repeat(64)),
            format!("{COOKIE_NAME}=zz"),
            format!("{COOKIE_NAME}="),
            "other=1".to_owned(),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::COOKIE, HeaderValue::try_from(cookie).unwrap());
            assert!(!sessions.is_signed_in(&headers));
        }
        assert!(!sessions.is_signed_in(&HeaderMap::new()));
    }

    #[test]
    fn sessions_are_bounded_and_the_oldest_goes_first() {
        let sessions = Sessions::default();
        let first = with_cookie(&sessions.open(false).unwrap());
        let second = with_cookie(&sessions.open(false).unwrap());
        for _ in 2..MAX_SESSIONS {
            sessions.open(false).unwrap();
        }
        assert!(sessions.is_signed_in(&first));
        sessions.open(false).unwrap();
        assert!(!sessions.is_signed_in(&first), "the oldest was ended");
        assert!(sessions.is_signed_in(&second));
        assert_eq!(sessions.open.lock().unwrap().len(), MAX_SESSIONS);
    }

    #[test]
    fn the_cookie_is_secure_when_a_tls_proxy_says_the_request_was_https() {
        let sessions = Sessions::default();
        let plain = sessions.open(false).unwrap();
        assert!(!plain.to_str().unwrap().contains("Secure"));
        let secure = sessions.open(true).unwrap();
        assert!(secure.to_str().unwrap().ends_with("; Secure"));
        assert!(expired_cookie(true).to_str().unwrap().ends_with("; Secure"));
        assert!(!expired_cookie(false).to_str().unwrap().contains("Secure"));

        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(*name, HeaderValue::from_static(value));
            }
            map
        };
        assert!(!arrived_over_https(&HeaderMap::new()));
        let cases: [(&[(&'static str, &'static str)], bool); 8] = [
            (&[("x-forwarded-proto", "HTTPS")], true),
            (&[("x-forwarded-proto", "https, http")], true),
            (&[("x-forwarded-proto", "http")], false),
            (
                &[("forwarded", "for=192.0.2.60;proto=https;by=203.0.113.43")],
                true,
            ),
            (&[("forwarded", "Proto=\"https\"")], true),
            // Only the first element (the client's hop) counts.
            (&[("forwarded", "proto=http, proto=https")], false),
            // X-Forwarded-Proto, when present, decides.
            (
                &[("x-forwarded-proto", "http"), ("forwarded", "proto=https")],
                false,
            ),
            (&[("forwarded", "for=192.0.2.60")], false),
        ];
        for (pairs, expected) in cases {
            assert_eq!(arrived_over_https(&headers(pairs)), expected, "{pairs:?}");
        }
    }
}
