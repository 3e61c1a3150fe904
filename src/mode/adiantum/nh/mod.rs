//! NH, Adiantum's ε-almost-Δ-universal hash: over each 1 KiB chunk, four
//! passes (key offset by 16 bytes each) summing 32x32->64-bit products of
//! (message + key) words. The scalar loop was half of Adiantum's time; on
//! AVX-512 four 16-byte units go per register and `vpmuludq` multiplies
//! eight word pairs at once.

use crate::cpu::NhAvx512;

mod avx512;

pub(super) const MESSAGE_BYTES: usize = 1024;
pub(super) const KEY_WORDS: usize = MESSAGE_BYTES / 4 + 4 * 3;

/// NH of one chunk: a multiple of 16 bytes, at most 1024.
pub(super) fn nh(key: &[u32; KEY_WORDS], msg: &[u8]) -> [u8; 32] {
    debug_assert!(msg.len().is_multiple_of(16) && msg.len() <= MESSAGE_BYTES);
    let sums = match NhAvx512::get() {
        Some(t) => avx512::nh(t, key, msg),
        None => scalar(key, msg),
    };
    let mut out = [0u8; 32];
    for (o, s) in out.chunks_exact_mut(8).zip(sums) {
        o.copy_from_slice(&s.to_le_bytes());
    }
    out
}

fn scalar(key: &[u32; KEY_WORDS], msg: &[u8]) -> [u64; 4] {
    let mut sums = [0u64; 4];
    for (i, unit) in msg.chunks_exact(16).enumerate() {
        let m: [u32; 4] = core::array::from_fn(|j| {
            u32::from_le_bytes(unit[4 * j..4 * j + 4].try_into().unwrap())
        });
        let k = &key[4 * i..];
        for (p, sum) in sums.iter_mut().enumerate() {
            let k = &k[4 * p..];
            *sum = sum
                .wrapping_add(
                    u64::from(m[0].wrapping_add(k[0])) * u64::from(m[2].wrapping_add(k[2])),
                )
                .wrapping_add(
                    u64::from(m[1].wrapping_add(k[1])) * u64::from(m[3].wrapping_add(k[3])),
                );
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simd_matches_scalar_for_every_length() {
        let Some(t) = NhAvx512::get() else {
            eprintln!("nh: no AVX-512 here; the scalar path is checked by the vectors only");
            return;
        };
        let key: [u32; KEY_WORDS] =
            core::array::from_fn(|i| (i as u32).wrapping_mul(0x9e37_79b9) ^ 0xdead_beef);
        let msg: Vec<u8> = (0..MESSAGE_BYTES)
            .map(|i| (i * 7 + (i >> 5)) as u8 ^ 0xa5)
            .collect();
        for units in 1..=MESSAGE_BYTES / 16 {
            let m = &msg[..16 * units];
            assert_eq!(avx512::nh(t, &key, m), scalar(&key, m), "{units} units");
        }
    }
}
