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
    /// Opens a session and answers the `Set-Cookie` value that carries it.
    pub fn open(&self) -> std::io::Result<HeaderValue> {
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
            "{COOKIE_NAME}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
            hex(&secret),
            SESSION_LIFETIME.as_secs()
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

/// The `Set-Cookie` value that removes the cookie.
pub fn expired_cookie() -> HeaderValue {
    HeaderValue::from_static("yoi_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
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
        let cookie = sessions.open().unwrap();
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
        sessions.open().unwrap();
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
        let first = with_cookie(&sessions.open().unwrap());
        let second = with_cookie(&sessions.open().unwrap());
        for _ in 2..MAX_SESSIONS {
            sessions.open().unwrap();
        }
        assert!(sessions.is_signed_in(&first));
        sessions.open().unwrap();
        assert!(!sessions.is_signed_in(&first), "the oldest was ended");
        assert!(sessions.is_signed_in(&second));
        assert_eq!(sessions.open.lock().unwrap().len(), MAX_SESSIONS);
    }
}
