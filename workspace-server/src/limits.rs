//! Bounds on connections and on wrong tokens, a leaf used by the state,
//! the accept loop and the token check.

use std::time::Duration;

/// Bounds on connections, applied before any request reaches a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request's headers, and how long
    /// a keep-alive connection may stay idle. Default 10 s.
    pub header_timeout: Duration,
    /// The most bytes of request headers (hyper's read buffer; at least
    /// 8,192). Default 64 KiB.
    pub max_header_bytes: usize,
    /// The most connections served at once. Default 1,024.
    pub max_connections: usize,
    /// Connections accepted past `max_connections` that answer only
    /// `/healthz`. Default 16.
    pub reserve_connections: usize,
    /// How long in-flight requests may finish after shutdown begins.
    /// Default 10 s.
    pub shutdown_grace: Duration,
    /// How long a client may leave the response unread: a write that makes
    /// no progress for this long closes the connection (an event stream's
    /// follower that stops reading is dropped, and resumes when it comes
    /// back). Default 30 s.
    pub write_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_connections: 1024,
            reserve_connections: 16,
            shutdown_grace: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// How many wrong tokens a client address may send (see `throttle.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedAuthLimits {
    /// Wrong tokens an address may send in a row before its tokens are no
    /// longer checked; 0 turns the throttle off. Default 10.
    pub burst: u32,
    /// How long until one attempt is given back. Default 1 s.
    pub refill: Duration,
}

impl Default for FailedAuthLimits {
    fn default() -> Self {
        Self {
            burst: 10,
            refill: Duration::from_secs(1),
        }
    }
}
