//! Ids that never repeat: time-ordered and random.
//!
//! A generated id is a prefix, 10 characters of milliseconds since the Unix
//! epoch and 8 characters of randomness, in lowercase Crockford base32 (so
//! it is short, URL-safe and inside the id charset): `w-01jdq3k9x7mq4h2z8v`.
//! Ids from one generator sort in creation order (within a millisecond the
//! random part counts up), and ids from different processes, or from before
//! a restart, do not collide.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const RANDOM_BITS: u32 = 40;

/// Makes ids that sort in the order they were made.
#[derive(Debug, Default)]
pub(crate) struct IdGenerator {
    /// The last (milliseconds, random) pair handed out.
    last: Mutex<(u64, u64)>,
}

impl IdGenerator {
    /// The next id with `prefix`.
    pub(crate) fn next(&self, prefix: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let (millis, random) = {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            let next = if now > last.0 {
                (now, random_bits() >> 1)
            } else {
                // Same millisecond (or a clock step back): count up, so the
                // order still follows creation.
                (last.0, last.1 + 1)
            };
            *last = next;
            next
        };
        let mut id = String::with_capacity(prefix.len() + 18);
        id.push_str(prefix);
        push_base32(&mut id, millis, 10);
        push_base32(&mut id, random, 8);
        id
    }
}

/// A random token of `chars` base32 characters, for log epochs.
pub(crate) fn random_token(chars: usize) -> String {
    let mut token = String::with_capacity(chars);
    push_base32(&mut token, random_bits(), chars.min(8));
    token
}

/// 40 random bits.
fn random_bits() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // No entropy source: fall back to the hasher's per-process keys and
        // the time, still distinct across processes in practice.
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        bytes = hasher.finish().to_le_bytes();
    }
    u64::from_le_bytes(bytes) & ((1 << RANDOM_BITS) - 1)
}

/// Appends the low `5 * chars` bits of `value`, most significant first.
fn push_base32(out: &mut String, value: u64, chars: usize) {
    for position in (0..chars).rev() {
        let digit = (value >> (5 * position)) & 31;
        out.push(ALPHABET[digit as usize] as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_in_creation_order_and_do_not_repeat() {
        let generator = IdGenerator::default();
        let ids: Vec<String> = (0..10_000).map(|_| generator.next("w-")).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, ids);
        assert!(ids.iter().all(|id| id.len() == 20));
        assert!(
            ids.iter()
                .all(|id| id.parse::<yoi_runtime_api::WorkerId>().is_ok())
        );
    }

    #[test]
    fn two_generators_do_not_collide() {
        let (a, b) = (IdGenerator::default(), IdGenerator::default());
        let left: std::collections::HashSet<String> = (0..1000).map(|_| a.next("in-")).collect();
        assert!((0..1000).all(|_| !left.contains(&b.next("in-"))));
    }
}
