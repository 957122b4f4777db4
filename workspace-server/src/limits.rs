//! Bounds on connections, a leaf used by the state and the accept loop.

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
