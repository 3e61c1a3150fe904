//! DES and 3DES 64 blocks at once on AVX-512 VBMI and GFNI: Feistel halves
//! kept E-expanded (one register per 6-bit chunk, a block per byte), rounds
//! as `vpermb` lookups of S-box-to-chunk tables, IP and FP as GF(2) bit
//! transposes. Reached through `cpu::DesAvx512`.

#![allow(unsafe_code)]

use super::{SP_TABLES, SP_USED, Schedule, transpose_plan};
use crate::cpu::DesAvx512;
use core::arch::x86_64::*;

/// Bytes of 64 blocks.
pub(super) const GROUP: usize = 512;

type Regs = [__m512i; 8];

/// A qword constant repeated in all eight lanes, from its bytes.
#[inline(always)]
unsafe fn qword(bytes: [u8; 8]) -> __m512i {
    unsafe { _mm512_set1_epi64(i64::from_le_bytes(bytes)) }
}

/// 8x8 transpose of qwords across eight registers: out[i] lane q =
/// in[q] lane i. Its own inverse.
#[inline(always)]
unsafe fn transpose_qwords(x: &mut Regs) {
    unsafe {
        let lo = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
        let hi = _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4);
        let mut a = [_mm512_setzero_si512(); 8];
        for p in 0..4 {
            a[2 * p] = _mm512_permutex2var_epi64(x[2 * p], lo, x[2 * p + 1]);
            a[2 * p + 1] = _mm512_permutex2var_epi64(x[2 * p], hi, x[2 * p + 1]);
        }
        // a[2p] = (i=0..3) x (reg 2p, 2p+1); a[2p+1] = i=4..7.
        let lo = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);
        let hi = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4);
        let mut b = [_mm512_setzero_si512(); 8];
        for h in 0..2 {
            for p in 0..2 {
                let (u, v) = (a[4 * p + h], a[4 * p + 2 + h]);
                b[4 * p + 2 * h] = _mm512_permutex2var_epi64(u, lo, v);
                b[4 * p + 2 * h + 1] = _mm512_permutex2var_epi64(u, hi, v);
            }
        }
        // b[4p + m] = i in {2m, 2m+1} x regs 4p..4p+3.
        let lo = _mm512_set_epi64(11, 10, 9, 8, 3, 2, 1, 0);
        let hi = _mm512_set_epi64(15, 14, 13, 12, 7, 6, 5, 4);
        for m in 0..4 {
            x[2 * m] = _mm512_permutex2var_epi64(b[m], lo, b[4 + m]);
            x[2 * m + 1] = _mm512_permutex2var_epi64(b[m], hi, b[4 + m]);
        }
    }
}

/// Byte m of lane i <-> byte i of lane m, inside each register.
#[inline(always)]
unsafe fn transpose_bytes(x: &mut Regs) {
    unsafe {
        let mut idx = [0u8; 64];
        for (n, b) in idx.iter_mut().enumerate() {
            *b = ((n % 8) * 8 + n / 8) as u8;
        }
        let idx = _mm512_loadu_si512(idx.as_ptr() as *const __m512i);
        for v in x.iter_mut() {
            *v = _mm512_permutexvar_epi8(idx, *v);
        }
    }
}

/// Blocks (one per lane) -> expanded halves (chunk j of 64 blocks per
/// register).
#[inline(always)]
unsafe fn expand(blocks: &Regs) -> (Regs, Regs) {
    unsafe {
        let (order, sel) = const { transpose_plan(false) };
        let order_idx = byte_order(order);
        let sel = qword(sel.map(|s| 1u8 << s));
        // Chunk j starts at half bit 4j - 1 (mod 32); the half is
        // duplicated in its qword so the window wraps.
        let windows = qword([31, 3, 7, 11, 15, 19, 23, 27]);
        let mut l = [_mm512_setzero_si512(); 8];
        let mut r = [_mm512_setzero_si512(); 8];
        for q in 0..8 {
            let x = _mm512_permutexvar_epi8(order_idx, blocks[q]);
            let halves = _mm512_gf2p8affine_epi64_epi8::<0>(sel, x);
            let ll = _mm512_shuffle_epi32::<0b10_10_00_00>(halves);
            let rr = _mm512_shuffle_epi32::<0b11_11_01_01>(halves);
            l[q] = _mm512_multishift_epi64_epi8(windows, ll);
            r[q] = _mm512_multishift_epi64_epi8(windows, rr);
        }
        for h in [&mut l, &mut r] {
            transpose_bytes(h);
            transpose_qwords(h);
        }
        (l, r)
    }
}

/// A vpermb index applying a byte order inside every qword.
#[inline(always)]
unsafe fn byte_order(order: [u8; 8]) -> __m512i {
    unsafe {
        let mut idx = [0u8; 64];
        for (n, b) in idx.iter_mut().enumerate() {
            *b = (n / 8 * 8) as u8 + order[n % 8];
        }
        _mm512_loadu_si512(idx.as_ptr() as *const __m512i)
    }
}

/// Expanded pre-output halves (first, second) -> blocks, through FP.
#[inline(always)]
unsafe fn contract(mut first: Regs, mut second: Regs) -> Regs {
    unsafe {
        for h in [&mut first, &mut second] {
            transpose_qwords(h);
            transpose_bytes(h);
        }
        let (order, sel) = const { transpose_plan(true) };
        let sel = qword(sel.map(|s| 1u8 << s));
        // Pre-output byte n is the first half's byte n (n < 4), else the
        // second half's byte n - 4;
        // after nibble packing, half byte k sits at even byte 2k.
        let mut idx = [0u8; 64];
        for (n, b) in idx.iter_mut().enumerate() {
            let src = order[n % 8] as usize;
            let base = n / 8 * 8;
            *b = if src < 4 {
                (base + 2 * src) as u8
            } else {
                (64 + base + 2 * (src - 4)) as u8
            };
        }
        let idx = _mm512_loadu_si512(idx.as_ptr() as *const __m512i);
        let nib = _mm512_set1_epi8(0x0f);
        let pair = _mm512_set1_epi16(0x1001);
        let mut out = [_mm512_setzero_si512(); 8];
        for q in 0..8 {
            // Chunk j bits 1..4 are half bits 4j..4j+3.
            let pack = |x: __m512i| {
                let n = _mm512_and_si512(_mm512_srli_epi64::<1>(x), nib);
                _mm512_maddubs_epi16(n, pair)
            };
            let pre = _mm512_permutex2var_epi8(pack(first[q]), idx, pack(second[q]));
            out[q] = _mm512_gf2p8affine_epi64_epi8::<0>(sel, pre);
        }
        out
    }
}

/// Sixteen rounds with one key schedule; leaves (L16, R16).
#[inline(always)]
unsafe fn pass(l: &mut Regs, r: &mut Regs, keys: &Schedule) {
    unsafe {
        for k in keys {
            let mut idx = [_mm512_setzero_si512(); 8];
            for j in 0..8 {
                idx[j] = _mm512_xor_si512(r[j], _mm512_set1_epi8(k[j] as i8));
            }
            // Unrolled with literal indices so the halves stay in
            // registers; unused tables vanish at compile time.
            macro_rules! lookup {
                ($i:literal, $j:literal) => {
                    if const { SP_USED[$i][$j] } {
                        let t = _mm512_load_si512(SP_TABLES[$i][$j].0.as_ptr() as *const __m512i);
                        l[$j] = _mm512_xor_si512(l[$j], _mm512_permutexvar_epi8(idx[$i], t));
                    }
                };
            }
            macro_rules! sbox {
                ($i:literal) => {
                    lookup!($i, 0);
                    lookup!($i, 1);
                    lookup!($i, 2);
                    lookup!($i, 3);
                    lookup!($i, 4);
                    lookup!($i, 5);
                    lookup!($i, 6);
                    lookup!($i, 7);
                };
            }
            sbox!(0);
            sbox!(1);
            sbox!(2);
            sbox!(3);
            sbox!(4);
            sbox!(5);
            sbox!(6);
            sbox!(7);
            core::mem::swap(l, r);
        }
    }
}

/// Run 64 blocks through the passes in `keys` (1 for DES, 3 for EDE).
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,gfni")]
unsafe fn run64_raw(keys: &[Schedule], data: &mut [u8; GROUP]) {
    unsafe {
        let p = data.as_mut_ptr() as *mut __m512i;
        let mut blocks = [_mm512_setzero_si512(); 8];
        for (q, b) in blocks.iter_mut().enumerate() {
            *b = _mm512_loadu_si512(p.add(q));
        }
        let (mut l, mut r) = expand(&blocks);
        for k in keys {
            pass(&mut l, &mut r, k);
            // Pre-output is R16 || L16. Between passes FP and IP cancel,
            // so that is the next pass's (L0, R0).
            core::mem::swap(&mut l, &mut r);
        }
        let out = contract(l, r);
        for (q, b) in out.iter().enumerate() {
            _mm512_storeu_si512(p.add(q), *b);
        }
    }
}

/// Run 64 blocks through every pass of `keys` in place.
pub(super) fn run64(_: DesAvx512, keys: &[Schedule], data: &mut [u8; GROUP]) {
    // SAFETY: the token proves AVX-512F/BW, AVX-512 VBMI and GFNI.
    unsafe { run64_raw(keys, data) }
}
