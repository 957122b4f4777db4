//! Wrong tokens are throttled per client address, so a token cannot be
//! guessed at the speed of the server.
//!
//! Each address may send `burst` wrong tokens (as a bearer header, or to
//! `POST /api/session`); each `refill` gives one attempt back. **An address
//! that has spent its attempts gets `429 too_many_attempts` without its
//! token being compared**, the right token included, so answers past the
//! budget tell a guesser nothing. Other addresses are not affected.
//!
//! IPv6 addresses count by their /64 (one host usually holds a whole /64).
//! At most [`MAX_TRACKED`] addresses are tracked; past that, new addresses
//! share one budget, so memory stays bounded and many addresses together
//! still get only one more budget. Requests from a reverse proxy count for
//! the client its forwarding header names when the proxy is trusted
//! ([`crate::TrustedProxies`], `forwarded.rs`); otherwise they all come
//! from the proxy's address and share its budget.
//!
//! Cost: a request with the right token reads one atomic counter while no
//! address has a wrong token outstanding, and takes a lock otherwise.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::Extensions;
use axum::http::request::Parts;

use crate::limits::FailedAuthLimits;

/// The most addresses with their own budget.
pub const MAX_TRACKED: usize = 4096;

/// The address a request came from, set by [`crate::serve`] on each
/// request when a token is configured (without one nothing is guessed):
/// the peer's, or behind a trusted proxy the client it names. A
/// request without it (a router driven some other way) counts as the
/// unspecified address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    /// The address in `extensions`, or the unspecified address.
    pub(crate) fn of(extensions: &Extensions) -> IpAddr {
        extensions
            .get::<ClientAddress>()
            .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |address| address.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(Self::of(&parts.extensions)))
    }
}

/// Wrong-token budgets per client address.
#[derive(Debug)]
pub(crate) struct AuthThrottle {
    limits: FailedAuthLimits,
    /// Buckets held (the shared overflow bucket included): while zero, a
    /// right token needs no lock.
    held: AtomicUsize,
    buckets: Mutex<Buckets>,
}

#[derive(Debug, Default)]
struct Buckets {
    by_address: HashMap<IpAddr, Bucket>,
    /// The budget shared by addresses past [`MAX_TRACKED`].
    overflow: Option<Bucket>,
    /// When whole buckets are dropped next, so that right tokens go back
    /// to the lock-free path once wrong ones stop.
    next_sweep: Option<Instant>,
}

/// Attempts spent, as of `since`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    spent: u32,
    since: Instant,
}

impl Bucket {
    /// Gives back what the time since `since` refilled; whether it is
    /// whole again.
    fn refill(&mut self, now: Instant, refill: Duration) -> bool {
        let elapsed = now.saturating_duration_since(self.since);
        let back = (elapsed.as_nanos() / refill.as_nanos().max(1)).min(u128::from(u32::MAX)) as u32;
        if back >= self.spent {
            self.spent = 0;
            self.since = now;
            return true;
        }
        self.spent -= back;
        self.since += refill * back;
        false
    }
}

impl AuthThrottle {
    pub(crate) fn new(limits: FailedAuthLimits) -> Self {
        Self {
            limits,
            held: AtomicUsize::new(0),
            buckets: Mutex::default(),
        }
    }

    pub(crate) fn limits(&self) -> FailedAuthLimits {
        self.limits
    }

    /// Runs `is_right` (the token comparison) for a request from `address`,
    /// unless the address has spent its attempts: then the time until its
    /// next attempt, and the comparison does not run. A wrong token spends
    /// one attempt.
    pub(crate) fn attempt(
        &self,
        address: IpAddr,
        is_right: impl FnOnce() -> bool,
    ) -> Result<bool, Duration> {
        if self.limits.burst == 0 {
            return Ok(is_right());
        }
        let key = key(address);
        if self.held.load(Ordering::Acquire) == 0 {
            let right = is_right();
            if !right {
                self.spend(key, Instant::now());
            }
            return Ok(right);
        }
        // Check, compare and spend under one lock, so that concurrent
        // guesses from one address cannot pass the check together.
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if buckets.next_sweep.is_none_or(|at| now >= at) {
            self.sweep(&mut buckets, now);
        }
        if let Some(wait) = self.exhausted(&mut buckets, key, now) {
            return Err(wait);
        }
        let right = is_right();
        if !right {
            self.spend_locked(&mut buckets, key, now);
        }
        Ok(right)
    }

    /// Drops the buckets that are whole again; the next sweep is one full
    /// refill later.
    fn sweep(&self, buckets: &mut Buckets, now: Instant) {
        let refill = self.limits.refill;
        buckets
            .by_address
            .retain(|_, bucket| !bucket.refill(now, refill));
        if buckets
            .overflow
            .as_mut()
            .is_some_and(|bucket| bucket.refill(now, refill))
        {
            buckets.overflow = None;
        }
        let whole = refill
            .saturating_mul(self.limits.burst)
            .max(Duration::from_secs(1));
        buckets.next_sweep = now.checked_add(whole);
        self.held.store(held(buckets), Ordering::Release);
    }

    fn spend(&self, key: IpAddr, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        self.spend_locked(&mut buckets, key, now);
    }

    /// How long until `key`'s next attempt, if it has none left.
    fn exhausted(&self, buckets: &mut Buckets, key: IpAddr, now: Instant) -> Option<Duration> {
        let refill = self.limits.refill;
        let full = buckets.by_address.len() >= MAX_TRACKED;
        let bucket = match buckets.by_address.get_mut(&key) {
            Some(bucket) => bucket,
            None if full => buckets.overflow.as_mut()?,
            None => return None,
        };
        bucket.refill(now, refill);
        (bucket.spent >= self.limits.burst)
            .then(|| refill.saturating_sub(now.saturating_duration_since(bucket.since)))
    }

    fn spend_locked(&self, buckets: &mut Buckets, key: IpAddr, now: Instant) {
        let refill = self.limits.refill;
        if !buckets.by_address.contains_key(&key) && buckets.by_address.len() >= MAX_TRACKED {
            // Whole buckets carry nothing: drop them to make room.
            self.sweep(buckets, now);
        }
        let bucket =
            if buckets.by_address.len() < MAX_TRACKED || buckets.by_address.contains_key(&key) {
                buckets.by_address.entry(key).or_insert(Bucket {
                    spent: 0,
                    since: now,
                })
            } else {
                buckets.overflow.get_or_insert(Bucket {
                    spent: 0,
                    since: now,
                })
            };
        bucket.refill(now, refill);
        bucket.spent = bucket.spent.saturating_add(1);
        self.held.store(held(buckets), Ordering::Release);
    }
}

fn held(buckets: &Buckets) -> usize {
    buckets.by_address.len() + usize::from(buckets.overflow.is_some())
}

/// The budget an address spends from: IPv4 as is (also when mapped into
/// IPv6), IPv6 by its /64.
fn key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn limits(burst: u32, refill_ms: u64) -> FailedAuthLimits {
        FailedAuthLimits {
            burst,
            refill: Duration::from_millis(refill_ms),
        }
    }

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    #[test]
    fn an_address_gets_its_burst_then_nothing_is_compared() {
        let throttle = AuthThrottle::new(limits(3, 60_000));
        for _ in 0..3 {
            assert_eq!(throttle.attempt(v4(1), || false), Ok(false));
        }
        let mut compared = false;
        let refused = throttle.attempt(v4(1), || {
            compared = true;
            true
        });
        let wait = refused.expect_err("the fourth attempt is refused");
        assert!(!compared, "the right token is not even compared");
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        // Another address is not affected.
        assert_eq!(throttle.attempt(v4(2), || true), Ok(true));
    }

    #[test]
    fn right_tokens_spend_nothing() {
        let throttle = AuthThrottle::new(limits(2, 60_000));
        for _ in 0..100 {
            assert_eq!(throttle.attempt(v4(1), || true), Ok(true));
        }
        assert_eq!(throttle.attempt(v4(1), || false), Ok(false));
        assert_eq!(throttle.attempt(v4(1), || true), Ok(true));
        assert_eq!(throttle.attempt(v4(1), || false), Ok(false));
        assert!(throttle.attempt(v4(1), || true).is_err());
    }

    #[test]
    fn each_refill_gives_one_attempt_back() {
        let mut bucket = Bucket {
            spent: 3,
            since: Instant::now(),
        };
        let start = bucket.since;
        let refill = Duration::from_secs(1);
        assert!(!bucket.refill(start + Duration::from_millis(999), refill));
        assert_eq!(bucket.spent, 3);
        assert!(!bucket.refill(start + Duration::from_millis(2500), refill));
        assert_eq!(bucket.spent, 1);
        // The half second left over counts toward the next attempt.
        assert_eq!(bucket.since, start + Duration::from_secs(2));
        assert!(bucket.refill(start + Duration::from_secs(3), refill));
        assert_eq!(bucket.spent, 0);
    }

    #[test]
    fn a_spent_address_is_answered_again_after_a_refill() {
        let throttle = AuthThrottle::new(limits(1, 300));
        assert_eq!(throttle.attempt(v4(1), || false), Ok(false));
        assert!(throttle.attempt(v4(1), || true).is_err());
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(throttle.attempt(v4(1), || true), Ok(true));
    }

    #[test]
    fn whole_buckets_are_swept_so_right_tokens_skip_the_lock_again() {
        let throttle = AuthThrottle::new(limits(1, 20));
        assert_eq!(throttle.attempt(v4(1), || false), Ok(false));
        assert_eq!(throttle.held.load(Ordering::Acquire), 1);
        std::thread::sleep(Duration::from_millis(30));
        // The first sweep is due at once; later ones a full refill apart.
        throttle.buckets.lock().unwrap().next_sweep = Some(Instant::now());
        assert_eq!(throttle.attempt(v4(2), || true), Ok(true));
        assert_eq!(throttle.held.load(Ordering::Acquire), 0);
        assert!(throttle.buckets.lock().unwrap().by_address.is_empty());
    }

    #[test]
    fn a_burst_of_zero_turns_the_throttle_off() {
        let throttle = AuthThrottle::new(limits(0, 1000));
        for _ in 0..50 {
            assert_eq!(throttle.attempt(v4(1), || false), Ok(false));
        }
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(key(a), key(b));
        assert_ne!(key(a), key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(key(mapped), v4(1));
    }

    #[test]
    fn addresses_past_the_bound_share_one_budget() {
        let throttle = AuthThrottle::new(limits(2, 60_000));
        for n in 0..MAX_TRACKED as u32 {
            let address = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
            assert_eq!(throttle.attempt(address, || false), Ok(false));
        }
        let buckets = throttle.buckets.lock().unwrap();
        assert_eq!(buckets.by_address.len(), MAX_TRACKED);
        drop(buckets);
        // Two new addresses spend the shared budget; a third has none.
        let late = |n: u8| IpAddr::V4(Ipv4Addr::new(192, 0, 2, n));
        assert_eq!(throttle.attempt(late(1), || false), Ok(false));
        assert_eq!(throttle.attempt(late(2), || false), Ok(false));
        assert!(throttle.attempt(late(3), || true).is_err());
        assert_eq!(
            throttle.buckets.lock().unwrap().by_address.len(),
            MAX_TRACKED,
            "memory stays bounded"
        );
        // A tracked address still has its own budget.
        let first = IpAddr::V4(Ipv4Addr::from(0x0a00_0000));
        assert_eq!(throttle.attempt(first, || true), Ok(true));
    }
}
