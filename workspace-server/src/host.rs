//! Which `Host` names the server answers for: the defence against DNS
//! rebinding. A leaf: the check itself is in [`crate::guard`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

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
        is_loopback_name(&name) || self.names.iter().any(|allowed| **allowed == *name)
    }
}

/// The name part of a `Host` value, lower-cased, without port or final
/// dot; borrowed unless it had upper-case letters.
fn host_name(host: &str) -> std::borrow::Cow<'_, str> {
    let name = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    let name = name.trim_end_matches('.');
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(name.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

fn is_loopback_name(name: &str) -> bool {
    // The names nearly every local client sends, before parsing an
    // address (a few hundred instructions of every request).
    if name == "127.0.0.1" || name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    let literal = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    literal.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
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
