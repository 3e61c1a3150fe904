//! NH, Adiantum's ε-almost-Δ-universal hash: over each 1 KiB chunk, four
//! passes (key offset by 16 bytes each) summing 32x32->64-bit products of
//! (message + key) words. The scalar loop was half of Adiantum's time; on
//! AVX-512 four 16-byte units go per register and `vpmuludq` multiplies
//! eight word pairs at once.

pub(super) const MESSAGE_BYTES: usize = 1024;
pub(super) const KEY_WORDS: usize = MESSAGE_BYTES / 4 + 4 * 3;

/// NH of one chunk: a multiple of 16 bytes, at most 1024.
pub(super) fn nh(key: &[u32; KEY_WORDS], msg: &[u8]) -> [u8; 32] {
    debug_assert!(msg.len().is_multiple_of(16) && msg.len() <= MESSAGE_BYTES);
    let sums = if simd::available() {
        // SAFETY: available() checked AVX-512F.
        unsafe { simd::nh(key, msg) }
    } else {
        scalar(key, msg)
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

#[cfg(not(target_arch = "x86_64"))]
mod simd {
    pub(super) fn available() -> bool {
        false
    }
    pub(super) unsafe fn nh(_: &[u32; super::KEY_WORDS], _: &[u8]) -> [u64; 4] {
        unreachable!()
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::KEY_WORDS;
    use core::arch::x86_64::*;

    pub(super) fn available() -> bool {
        crate::cpu::simd_for("adiantum (NH)")
    }

    /// Sum over the units in `a` (message + key words, four units per
    /// register) of a0*a2 + a1*a3, into the low qword of each 128-bit lane.
    #[inline(always)]
    unsafe fn products(a: __m512i) -> __m512i {
        unsafe {
            // Words (2, 3) of each unit beside (0, 1).
            let b = _mm512_shuffle_epi32::<0b01_00_11_10>(a);
            let even = _mm512_mul_epu32(a, b);
            let odd = _mm512_mul_epu32(_mm512_srli_epi64::<32>(a), _mm512_srli_epi64::<32>(b));
            _mm512_add_epi64(even, odd)
        }
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn nh(key: &[u32; KEY_WORDS], msg: &[u8]) -> [u64; 4] {
        unsafe {
            let units = msg.len() / 16;
            let mut acc = [_mm512_setzero_si512(); 4];
            let mp = msg.as_ptr();
            let kp = key.as_ptr();
            let mut i = 0;
            while i + 4 <= units {
                let m = _mm512_loadu_si512(mp.add(16 * i) as *const __m512i);
                for (p, a) in acc.iter_mut().enumerate() {
                    let k = _mm512_loadu_si512(kp.add(4 * (i + p)) as *const __m512i);
                    *a = _mm512_add_epi64(*a, products(_mm512_add_epi32(m, k)));
                }
                i += 4;
            }
            if i < units {
                // 1 to 3 units left: the masked-off lanes add zero products.
                let mask = (1u16 << (4 * (units - i))) - 1;
                let m = _mm512_maskz_loadu_epi32(mask, mp.add(16 * i) as *const i32);
                for (p, a) in acc.iter_mut().enumerate() {
                    let k = _mm512_maskz_loadu_epi32(mask, kp.add(4 * (i + p)) as *const i32);
                    *a = _mm512_add_epi64(*a, products(_mm512_add_epi32(m, k)));
                }
            }
            // Each pass: the low qwords of its four lanes (the high ones
            // hold the same products again).
            let low = 0b0101_0101;
            acc.map(|a| _mm512_mask_reduce_add_epi64(low, a) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simd_matches_scalar_for_every_length() {
        if !simd::available() {
            eprintln!("nh: no AVX-512 here; the scalar path is checked by the vectors only");
            return;
        }
        let key: [u32; KEY_WORDS] =
            core::array::from_fn(|i| (i as u32).wrapping_mul(0x9e37_79b9) ^ 0xdead_beef);
        let msg: Vec<u8> = (0..MESSAGE_BYTES)
            .map(|i| (i * 7 + (i >> 5)) as u8 ^ 0xa5)
            .collect();
        for units in 1..=MESSAGE_BYTES / 16 {
            let m = &msg[..16 * units];
            // SAFETY: available() checked above.
            assert_eq!(
                unsafe { simd::nh(&key, m) },
                scalar(&key, m),
                "{units} units"
            );
        }
    }
}
