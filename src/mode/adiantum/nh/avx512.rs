//! NH on AVX-512: four 16-byte units per register, `vpmuludq` multiplying
//! eight word pairs at once. Reached through `cpu::NhAvx512`.

#![allow(unsafe_code)]

use super::{KEY_WORDS, MESSAGE_BYTES};
use crate::cpu::NhAvx512;
use core::arch::x86_64::*;

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
unsafe fn nh_raw(key: &[u32; KEY_WORDS], msg: &[u8]) -> [u64; 4] {
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

/// The four NH sums of one chunk (a multiple of 16 bytes, at most 1024).
pub(super) fn nh(_: NhAvx512, key: &[u32; KEY_WORDS], msg: &[u8]) -> [u64; 4] {
    // The loads read key words up to the chunk's units plus three passes.
    assert!(msg.len().is_multiple_of(16) && msg.len() <= MESSAGE_BYTES);
    // SAFETY: the token proves AVX-512F; the lengths are checked above.
    unsafe { nh_raw(key, msg) }
}
