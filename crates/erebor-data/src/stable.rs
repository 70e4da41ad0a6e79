//! Stable hashing and seeded randomness: the same input and seed give the same output on every
//! machine and in every row order.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// 64-bit FNV-1a of `bytes`; stable across platforms and Rust versions (unlike `DefaultHasher`).
pub(crate) fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// A random number generator for one row, seeded from the step's seed and the row's key, so a
/// row gets the same draw whatever rows come before it.
pub(crate) fn row_rng(seed: u64, key: &str) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ stable_hash(key.as_bytes()).rotate_left(17))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        // From the FNV reference test suite (draft-eastlake-fnv).
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(stable_hash(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
