//! Helpers the cipher tests share.

use super::BlockCipher;

/// Deterministic bytes (an LCG): reproducible failures, no dependency.
pub(super) fn rand_bytes(seed: &mut u64, out: &mut [u8]) {
    for b in out {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *b = (*seed >> 56) as u8;
    }
}

pub(super) fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub(super) fn xor(a: &mut [u8], b: &[u8]) {
    a.iter_mut().zip(b).for_each(|(x, y)| *x ^= y);
}

/// `ours` encrypts `plain` as `peer` does, and decrypts it back.
pub(super) fn assert_matches(
    ours: &dyn BlockCipher,
    peer: &dyn BlockCipher,
    plain: &[u8],
    what: &str,
) {
    let (mut a, mut b) = (plain.to_vec(), plain.to_vec());
    ours.encrypt_blocks(&mut a);
    peer.encrypt_blocks(&mut b);
    assert_eq!(a, b, "encrypt, {what}");
    ours.decrypt_blocks(&mut a);
    assert_eq!(a, plain, "decrypt, {what}");
}
