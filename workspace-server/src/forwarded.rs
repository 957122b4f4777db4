//! Which client a request came from when a trusted reverse proxy passed it
//! on.
//!
//! Behind a proxy every connection comes from the proxy's address, so the
//! wrong-token throttle (`throttle.rs`) would give all its clients one
//! budget: one guesser would lock everybody out. A proxy names the client
//! it served in `X-Forwarded-For` (or `Forwarded: for=`), appending the
//! address it saw to what the request already carried. **Only the part a
//! trusted proxy wrote is believed**: the client is the rightmost address
//! that is not itself a trusted proxy, so whatever a client writes into
//! these headers is to the left of it and never chosen. A connection from
//! an address that is not a trusted proxy is its own client, whatever its
//! headers say.
//!
//! When the header a trusted proxy should have written is missing, or its
//! rightmost untrusted entry is not an address (`unknown`, an obfuscated
//! name), the request counts as the proxy's own: one shared budget, never
//! an address the client chose.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The addresses (single hosts or networks) of the reverse proxies whose
/// forwarding headers are believed. Empty by default: no header is.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Arc<[IpNet]>,
}

/// A `trusted_proxies` entry that is neither an address nor a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{entry}' is not an IP address or network like \"10.0.0.0/8\"")]
pub struct InvalidProxy {
    /// The entry as written.
    pub entry: String,
}

impl TrustedProxies {
    /// Proxies at these addresses or networks.
    pub fn new(networks: impl IntoIterator<Item = IpNet>) -> Self {
        Self {
            networks: networks.into_iter().map(|net| net.trunc()).collect(),
        }
    }

    /// Parses entries like `"127.0.0.1"`, `"10.0.0.0/8"`, `"::1"` or
    /// `"fd00::/8"`.
    pub fn parse<S: AsRef<str>>(
        entries: impl IntoIterator<Item = S>,
    ) -> Result<Self, InvalidProxy> {
        let networks = entries
            .into_iter()
            .map(|entry| parse_network(entry.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(networks))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// Whether `address` is a trusted proxy.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.networks.iter().any(|net| net.contains(&address))
    }

    /// The client a request from `peer`, a trusted proxy, was sent for: the
    /// rightmost forwarded address that is not a trusted proxy (the
    /// leftmost when all are), or `peer` when there is none to believe.
    pub(crate) fn client_behind(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        // `Forwarded` only when there is no `X-Forwarded-For`.
        let forwarded = !headers.contains_key("x-forwarded-for");
        let name = if forwarded {
            "forwarded"
        } else {
            "x-forwarded-for"
        };
        let mut leftmost = peer;
        // Right to left, header lines last to first, without copying.
        for value in headers.get_all(name).iter().rev() {
            let Ok(value) = value.to_str() else {
                return peer;
            };
            for element in value.rsplit(',') {
                let hop = if forwarded {
                    match forwarded_for_parameter(element) {
                        Some(hop) => hop,
                        None => continue,
                    }
                } else {
                    element
                };
                let Some(address) = parse_hop(hop) else {
                    return peer;
                };
                if !self.contains(address) {
                    return address;
                }
                leftmost = address;
            }
        }
        leftmost
    }
}

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.networks.iter()).finish()
    }
}

fn parse_network(entry: &str) -> Result<IpNet, InvalidProxy> {
    let invalid = || InvalidProxy {
        entry: entry.to_owned(),
    };
    if entry.contains('/') {
        IpNet::from_str(entry).map_err(|_| invalid())
    } else {
        IpAddr::from_str(entry)
            .map(IpNet::from)
            .map_err(|_| invalid())
    }
}

/// The `for=` value of one `Forwarded` element, e.g. `for=192.0.2.60;proto=http`.
fn forwarded_for_parameter(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim().eq_ignore_ascii_case("for").then_some(value)
    })
}

/// One forwarded address: `192.0.2.60`, `192.0.2.60:4711`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:4711`, perhaps quoted.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    let address = if let Some(bracketed) = hop.strip_prefix('[') {
        let (inside, rest) = bracketed.split_once(']')?;
        if !(rest.is_empty() || rest.starts_with(':')) {
            return None;
        }
        IpAddr::from_str(inside).ok()?
    } else {
        IpAddr::from_str(hop)
            .ok()
            .or_else(|| SocketAddr::from_str(hop).ok().map(|socket| socket.ip()))?
    };
    Some(address.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(entries).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn entries_are_addresses_or_networks() {
        let trusted = proxies(&["127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8"]);
        for inside in ["127.0.0.1", "10.1.2.3", "::1", "fd12::5", "::ffff:10.9.9.9"] {
            assert!(trusted.contains(ip(inside)), "{inside}");
        }
        for outside in ["127.0.0.2", "11.0.0.1", "::2", "fe80::1"] {
            assert!(!trusted.contains(ip(outside)), "{outside}");
        }
        for wrong in [
            "",
            "localhost",
            "10.0.0.0/33",
            "10.0.0.1:80",
            "http://10.0.0.1",
        ] {
            assert_eq!(
                TrustedProxies::parse([wrong]),
                Err(InvalidProxy {
                    entry: wrong.to_owned()
                }),
                "{wrong:?}"
            );
        }
        // Host bits of a network entry are ignored.
        assert!(proxies(&["10.1.2.3/8"]).contains(ip("10.200.0.1")));
    }

    #[test]
    fn the_client_is_the_rightmost_address_that_is_not_a_trusted_proxy() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.1");
        let cases: &[(&[(&'static str, &str)], &str)] = &[
            // What the client wrote is left of what the proxy appended.
            (
                &[("x-forwarded-for", "6.6.6.6, 203.0.113.7")],
                "203.0.113.7",
            ),
            // Proxies in a chain are skipped.
            (
                &[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.9")],
                "203.0.113.7",
            ),
            // Several header lines are one list, in order.
            (
                &[
                    ("x-forwarded-for", "6.6.6.6"),
                    ("x-forwarded-for", "203.0.113.8"),
                ],
                "203.0.113.8",
            ),
            // Ports and brackets.
            (&[("x-forwarded-for", "203.0.113.9:4711")], "203.0.113.9"),
            (&[("x-forwarded-for", "[2001:db8::7]:4711")], "2001:db8::7"),
            (&[("x-forwarded-for", "2001:db8::8")], "2001:db8::8"),
            // Every hop trusted: the leftmost.
            (&[("x-forwarded-for", "10.0.0.5, 10.0.0.6")], "10.0.0.5"),
            // `Forwarded` when there is no `X-Forwarded-For`.
            (
                &[(
                    "forwarded",
                    "for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https",
                )],
                "2001:db8:cafe::17",
            ),
            (
                &[("forwarded", "proto=https;For=198.51.100.3")],
                "198.51.100.3",
            ),
            // Nothing to believe: the proxy's own address.
            (&[], "10.0.0.1"),
            (&[("x-forwarded-for", "6.6.6.6, unknown")], "10.0.0.1"),
            (&[("forwarded", "for=_hidden")], "10.0.0.1"),
            (&[("x-forwarded-for", "[::1")], "10.0.0.1"),
            (&[("x-forwarded-for", "")], "10.0.0.1"),
        ];
        for (pairs, client) in cases {
            assert_eq!(
                trusted.client_behind(peer, &headers(pairs)),
                ip(client),
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn x_forwarded_for_wins_over_forwarded() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let both = headers(&[
            ("forwarded", "for=198.51.100.1"),
            ("x-forwarded-for", "198.51.100.2"),
        ]);
        assert_eq!(
            trusted.client_behind(ip("10.0.0.1"), &both),
            ip("198.51.100.2")
        );
    }
}
