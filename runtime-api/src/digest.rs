//! A stable 64-bit digest, for fingerprints that must compare equal across
//! processes, restarts and versions (std's hasher promises none of that):
//! a Worker list cursor's filter, a remembered input's text.
//!
//! FNV-1a: fast on short inputs and simple enough to keep stable forever.
//! It is not a cryptographic hash; a collision only makes two different
//! values look the same to a fingerprint check.

/// FNV-1a, 64 bits, over a sequence of byte strings. Each string ends with
/// a separator, so `("ab", "c")` and `("a", "bc")` differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest(u64);

impl Default for Digest {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Digest {
    /// The digest of one byte string.
    pub fn of(bytes: &[u8]) -> u64 {
        let mut digest = Self::default();
        digest.write(bytes);
        digest.finish()
    }

    /// Adds one byte string.
    pub fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.mix(*byte);
        }
        self.mix(0xff);
    }

    /// The digest so far.
    pub fn finish(self) -> u64 {
        self.0
    }

    fn mix(&mut self, byte: u8) {
        self.0 ^= u64::from(byte);
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored digests and issued cursors depend on these values.
    #[test]
    fn digests_are_fixed() {
        assert_eq!(Digest::default().finish(), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Digest::of(b""), 0xaf64_724c_8602_eb6e);
        assert_eq!(Digest::of(b"hello"), 0xa9bd_73cc_a220_c59c);
        assert_ne!(Digest::of(b"hello"), Digest::of(b"hellp"));
        let mut split = Digest::default();
        split.write(b"ab");
        split.write(b"c");
        let mut other = Digest::default();
        other.write(b"a");
        other.write(b"bc");
        assert_ne!(split.finish(), other.finish());
    }
}
