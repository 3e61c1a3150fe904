//! Serpent bit-sliced on SSE2: four blocks per four 128-bit registers,
//! the S-boxes as the gate circuits of `circuits.rs`. Reached through
//! `cpu::SerpentSse2`.

#![allow(unsafe_code)]

use super::gates::{self, Gates, Lanes, Masked, Splat};
use crate::cpu::SerpentSse2;
use core::arch::x86_64::*;

/// Bytes of eight blocks: two register sets.
pub(super) const GROUP: usize = 128;

/// A 128-bit register. Only `run_raw` makes one, and it runs with SSE2
/// enabled behind the token, so the intrinsics below always have it.
#[derive(Clone, Copy)]
struct X(__m128i);

impl Gates for X {
    #[inline(always)]
    fn and(self, o: X) -> X {
        // SAFETY: an `X` exists only where SSE2 is proven (type comment).
        X(unsafe { _mm_and_si128(self.0, o.0) })
    }
    #[inline(always)]
    fn or(self, o: X) -> X {
        // SAFETY: as above.
        X(unsafe { _mm_or_si128(self.0, o.0) })
    }
    #[inline(always)]
    fn xor(self, o: X) -> X {
        // SAFETY: as above.
        X(unsafe { _mm_xor_si128(self.0, o.0) })
    }
    #[inline(always)]
    fn andnot(self, o: X) -> X {
        // SAFETY: as above.
        X(unsafe { _mm_andnot_si128(self.0, o.0) })
    }
}

impl Lanes for X {
    #[inline(always)]
    fn key(k: &Splat) -> X {
        // SAFETY: as above; `Splat` is 32-byte aligned and 32 bytes long.
        X(unsafe { _mm_load_si128(k.0.as_ptr() as *const __m128i) })
    }
    #[inline(always)]
    fn shl<const L: i32>(self) -> X {
        // SAFETY: as above.
        X(unsafe { _mm_slli_epi32::<L>(self.0) })
    }
    #[inline(always)]
    fn rotl<const L: i32, const R: i32>(self) -> X {
        // SAFETY: as above.
        unsafe {
            X(_mm_or_si128(
                _mm_slli_epi32::<L>(self.0),
                _mm_srli_epi32::<R>(self.0),
            ))
        }
    }
}

/// 4x4 transpose of 32-bit words inside each 128-bit lane; its own
/// inverse. Blocks in, bit-sliced words out (and back).
#[inline(always)]
unsafe fn transpose(x: &mut [X; 4]) {
    unsafe {
        let t0 = _mm_unpacklo_epi32(x[0].0, x[1].0);
        let t1 = _mm_unpackhi_epi32(x[0].0, x[1].0);
        let t2 = _mm_unpacklo_epi32(x[2].0, x[3].0);
        let t3 = _mm_unpackhi_epi32(x[2].0, x[3].0);
        *x = [
            X(_mm_unpacklo_epi64(t0, t2)),
            X(_mm_unpackhi_epi64(t0, t2)),
            X(_mm_unpacklo_epi64(t1, t3)),
            X(_mm_unpackhi_epi64(t1, t3)),
        ];
    }
}

#[target_feature(enable = "sse2")]
unsafe fn run_raw(keys: &Masked, data: &mut [u8; GROUP], enc: bool) {
    unsafe {
        let p = data.as_mut_ptr() as *mut __m128i;
        let sets = [0, 1].map(|h| {
            let mut x = [0, 1, 2, 3].map(|j| X(_mm_loadu_si128(p.add(4 * h + j))));
            transpose(&mut x);
            x
        });
        for (h, mut x) in gates::crypt_pair(keys, sets, enc).into_iter().enumerate() {
            transpose(&mut x);
            for (j, v) in x.iter().enumerate() {
                _mm_storeu_si128(p.add(4 * h + j), v.0);
            }
        }
    }
}

/// Encrypt or decrypt eight blocks (two register sets) in place.
pub(super) fn run(_: SerpentSse2, keys: &Masked, data: &mut [u8; GROUP], enc: bool) {
    // SAFETY: the token proves SSE2.
    unsafe { run_raw(keys, data, enc) }
}
