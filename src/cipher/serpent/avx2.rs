//! Serpent bit-sliced on AVX2: eight blocks per four 256-bit registers,
//! the S-boxes as the gate circuits of `circuits.rs`. Reached through
//! `cpu::SerpentAvx2`.

#![allow(unsafe_code)]

use super::gates::{self, Gates, Lanes, Masked, Splat};
use crate::cpu::SerpentAvx2;
use core::arch::x86_64::*;

/// Bytes of sixteen blocks: two register sets.
pub(super) const GROUP: usize = 256;

/// A 256-bit register. Only `run_raw` makes one, and it runs with AVX2
/// enabled behind the token, so the intrinsics below always have it.
#[derive(Clone, Copy)]
struct Y(__m256i);

impl Gates for Y {
    #[inline(always)]
    fn and(self, o: Y) -> Y {
        // SAFETY: a `Y` exists only where AVX2 is proven (type comment).
        Y(unsafe { _mm256_and_si256(self.0, o.0) })
    }
    #[inline(always)]
    fn or(self, o: Y) -> Y {
        // SAFETY: as above.
        Y(unsafe { _mm256_or_si256(self.0, o.0) })
    }
    #[inline(always)]
    fn xor(self, o: Y) -> Y {
        // SAFETY: as above.
        Y(unsafe { _mm256_xor_si256(self.0, o.0) })
    }
    #[inline(always)]
    fn andnot(self, o: Y) -> Y {
        // SAFETY: as above.
        Y(unsafe { _mm256_andnot_si256(self.0, o.0) })
    }
}

impl Lanes for Y {
    #[inline(always)]
    fn key(k: &Splat) -> Y {
        // SAFETY: as above; `Splat` is 32-byte aligned and 32 bytes long.
        Y(unsafe { _mm256_load_si256(k.0.as_ptr() as *const __m256i) })
    }
    #[inline(always)]
    fn shl<const L: i32>(self) -> Y {
        // SAFETY: as above.
        Y(unsafe { _mm256_slli_epi32::<L>(self.0) })
    }
    #[inline(always)]
    fn rotl<const L: i32, const R: i32>(self) -> Y {
        // SAFETY: as above.
        unsafe {
            Y(_mm256_or_si256(
                _mm256_slli_epi32::<L>(self.0),
                _mm256_srli_epi32::<R>(self.0),
            ))
        }
    }
}

/// 4x4 transpose of 32-bit words inside each 128-bit lane; its own
/// inverse. Blocks in, bit-sliced words out (and back).
#[inline(always)]
unsafe fn transpose(x: &mut [Y; 4]) {
    unsafe {
        let t0 = _mm256_unpacklo_epi32(x[0].0, x[1].0);
        let t1 = _mm256_unpackhi_epi32(x[0].0, x[1].0);
        let t2 = _mm256_unpacklo_epi32(x[2].0, x[3].0);
        let t3 = _mm256_unpackhi_epi32(x[2].0, x[3].0);
        *x = [
            Y(_mm256_unpacklo_epi64(t0, t2)),
            Y(_mm256_unpackhi_epi64(t0, t2)),
            Y(_mm256_unpacklo_epi64(t1, t3)),
            Y(_mm256_unpackhi_epi64(t1, t3)),
        ];
    }
}

#[target_feature(enable = "avx2")]
unsafe fn run_raw(keys: &Masked, data: &mut [u8; GROUP], enc: bool) {
    unsafe {
        let p = data.as_mut_ptr() as *mut __m256i;
        let sets = [0, 1].map(|h| {
            let mut x = [0, 1, 2, 3].map(|j| Y(_mm256_loadu_si256(p.add(4 * h + j))));
            transpose(&mut x);
            x
        });
        for (h, mut x) in gates::crypt_pair(keys, sets, enc).into_iter().enumerate() {
            transpose(&mut x);
            for (j, v) in x.iter().enumerate() {
                _mm256_storeu_si256(p.add(4 * h + j), v.0);
            }
        }
    }
}

/// Encrypt or decrypt sixteen blocks (two register sets) in place.
pub(super) fn run(_: SerpentAvx2, keys: &Masked, data: &mut [u8; GROUP], enc: bool) {
    // SAFETY: the token proves AVX2.
    unsafe { run_raw(keys, data, enc) }
}
