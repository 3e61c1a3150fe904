//! Serpent bit-sliced on AVX-512: sixteen blocks per four registers, each
//! S-box output bit three `vpternlogd` whose truth tables are computed at
//! compile time from the S-box tables. Reached through `cpu::SerpentAvx512`.

#![allow(unsafe_code)]

use super::{INV_SBOX, ROUNDS, SBOX, Words};
use crate::cpu::SerpentAvx512;
use core::arch::x86_64::*;

/// Bytes of sixteen blocks.
pub(super) const GROUP: usize = 256;

type X = [__m512i; 4];

/// `vpternlogd` truth table of output bit `bit` of S-box `s` on inputs
/// (x2, x1, x0), for x3 fixed to `hi`.
const fn tt(s: &[u8; 16], bit: usize, hi: usize) -> i32 {
    let mut imm = 0;
    let mut m = 0;
    while m < 8 {
        if (s[m | (hi << 3)] >> bit) & 1 == 1 {
            imm |= 1 << m;
        }
        m += 1;
    }
    imm
}

/// One output bit: evaluate for x3 = 0 and x3 = 1, then select on x3.
#[inline(always)]
unsafe fn bit<const LO: i32, const HI: i32>(x: &X) -> __m512i {
    unsafe {
        let lo = _mm512_ternarylogic_epi32::<LO>(x[2], x[1], x[0]);
        let hi = _mm512_ternarylogic_epi32::<HI>(x[2], x[1], x[0]);
        // x3 ? hi : lo
        _mm512_ternarylogic_epi32::<0xCA>(x[3], hi, lo)
    }
}

macro_rules! sbox {
    ($name:ident, $table:expr) => {
        #[inline(always)]
        unsafe fn $name(x: &mut X) {
            unsafe {
                *x = [
                    bit::<{ tt(&$table, 0, 0) }, { tt(&$table, 0, 1) }>(x),
                    bit::<{ tt(&$table, 1, 0) }, { tt(&$table, 1, 1) }>(x),
                    bit::<{ tt(&$table, 2, 0) }, { tt(&$table, 2, 1) }>(x),
                    bit::<{ tt(&$table, 3, 0) }, { tt(&$table, 3, 1) }>(x),
                ];
            }
        }
    };
}

sbox!(s0, SBOX[0]);
sbox!(s1, SBOX[1]);
sbox!(s2, SBOX[2]);
sbox!(s3, SBOX[3]);
sbox!(s4, SBOX[4]);
sbox!(s5, SBOX[5]);
sbox!(s6, SBOX[6]);
sbox!(s7, SBOX[7]);
sbox!(i0, INV_SBOX[0]);
sbox!(i1, INV_SBOX[1]);
sbox!(i2, INV_SBOX[2]);
sbox!(i3, INV_SBOX[3]);
sbox!(i4, INV_SBOX[4]);
sbox!(i5, INV_SBOX[5]);
sbox!(i6, INV_SBOX[6]);
sbox!(i7, INV_SBOX[7]);

const XOR3: i32 = 0x96;

#[inline(always)]
unsafe fn mix_key(x: &mut X, k: &Words) {
    unsafe {
        for j in 0..4 {
            x[j] = _mm512_xor_si512(x[j], _mm512_set1_epi32(k[j] as i32));
        }
    }
}

/// The linear transformation (specification, section 2.3).
#[inline(always)]
unsafe fn lt(x: &mut X) {
    unsafe {
        let [mut a, mut b, mut c, mut d] = *x;
        a = _mm512_rol_epi32::<13>(a);
        c = _mm512_rol_epi32::<3>(c);
        b = _mm512_ternarylogic_epi32::<XOR3>(b, a, c);
        d = _mm512_ternarylogic_epi32::<XOR3>(d, c, _mm512_slli_epi32::<3>(a));
        b = _mm512_rol_epi32::<1>(b);
        d = _mm512_rol_epi32::<7>(d);
        a = _mm512_ternarylogic_epi32::<XOR3>(a, b, d);
        c = _mm512_ternarylogic_epi32::<XOR3>(c, d, _mm512_slli_epi32::<7>(b));
        a = _mm512_rol_epi32::<5>(a);
        c = _mm512_rol_epi32::<22>(c);
        *x = [a, b, c, d];
    }
}

#[inline(always)]
unsafe fn inv_lt(x: &mut X) {
    unsafe {
        let [mut a, mut b, mut c, mut d] = *x;
        c = _mm512_ror_epi32::<22>(c);
        a = _mm512_ror_epi32::<5>(a);
        c = _mm512_ternarylogic_epi32::<XOR3>(c, d, _mm512_slli_epi32::<7>(b));
        a = _mm512_ternarylogic_epi32::<XOR3>(a, b, d);
        d = _mm512_ror_epi32::<7>(d);
        b = _mm512_ror_epi32::<1>(b);
        d = _mm512_ternarylogic_epi32::<XOR3>(d, c, _mm512_slli_epi32::<3>(a));
        b = _mm512_ternarylogic_epi32::<XOR3>(b, a, c);
        c = _mm512_ror_epi32::<3>(c);
        a = _mm512_ror_epi32::<13>(a);
        *x = [a, b, c, d];
    }
}

/// 4x4 transpose of 32-bit words inside each 128-bit lane; its own
/// inverse. Blocks in, bit-sliced words out (and back).
#[inline(always)]
unsafe fn transpose(x: &mut X) {
    unsafe {
        let t0 = _mm512_unpacklo_epi32(x[0], x[1]);
        let t1 = _mm512_unpackhi_epi32(x[0], x[1]);
        let t2 = _mm512_unpacklo_epi32(x[2], x[3]);
        let t3 = _mm512_unpackhi_epi32(x[2], x[3]);
        *x = [
            _mm512_unpacklo_epi64(t0, t2),
            _mm512_unpackhi_epi64(t0, t2),
            _mm512_unpacklo_epi64(t1, t3),
            _mm512_unpackhi_epi64(t1, t3),
        ];
    }
}

#[inline(always)]
unsafe fn encrypt(keys: &[Words; ROUNDS + 1], x: &mut X) {
    unsafe {
        for r in (0..ROUNDS).step_by(8) {
            mix_key(x, &keys[r]);
            s0(x);
            lt(x);
            mix_key(x, &keys[r + 1]);
            s1(x);
            lt(x);
            mix_key(x, &keys[r + 2]);
            s2(x);
            lt(x);
            mix_key(x, &keys[r + 3]);
            s3(x);
            lt(x);
            mix_key(x, &keys[r + 4]);
            s4(x);
            lt(x);
            mix_key(x, &keys[r + 5]);
            s5(x);
            lt(x);
            mix_key(x, &keys[r + 6]);
            s6(x);
            lt(x);
            mix_key(x, &keys[r + 7]);
            s7(x);
            // The last round replaces the transformation by a key.
            if r + 8 < ROUNDS {
                lt(x);
            }
        }
        mix_key(x, &keys[ROUNDS]);
    }
}

#[inline(always)]
unsafe fn decrypt(keys: &[Words; ROUNDS + 1], x: &mut X) {
    unsafe {
        mix_key(x, &keys[ROUNDS]);
        for r in (0..ROUNDS).step_by(8).rev() {
            if r + 8 < ROUNDS {
                inv_lt(x);
            }
            i7(x);
            mix_key(x, &keys[r + 7]);
            inv_lt(x);
            i6(x);
            mix_key(x, &keys[r + 6]);
            inv_lt(x);
            i5(x);
            mix_key(x, &keys[r + 5]);
            inv_lt(x);
            i4(x);
            mix_key(x, &keys[r + 4]);
            inv_lt(x);
            i3(x);
            mix_key(x, &keys[r + 3]);
            inv_lt(x);
            i2(x);
            mix_key(x, &keys[r + 2]);
            inv_lt(x);
            i1(x);
            mix_key(x, &keys[r + 1]);
            inv_lt(x);
            i0(x);
            mix_key(x, &keys[r]);
        }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn run16_raw(keys: &[Words; ROUNDS + 1], data: &mut [u8; GROUP], enc: bool) {
    unsafe {
        let p = data.as_mut_ptr() as *mut __m512i;
        let mut x: X = [
            _mm512_loadu_si512(p),
            _mm512_loadu_si512(p.add(1)),
            _mm512_loadu_si512(p.add(2)),
            _mm512_loadu_si512(p.add(3)),
        ];
        transpose(&mut x);
        if enc {
            encrypt(keys, &mut x);
        } else {
            decrypt(keys, &mut x);
        }
        transpose(&mut x);
        for (j, v) in x.iter().enumerate() {
            _mm512_storeu_si512(p.add(j), *v);
        }
    }
}

/// Encrypt or decrypt sixteen blocks in place.
pub(super) fn run16(
    _: SerpentAvx512,
    keys: &[Words; ROUNDS + 1],
    data: &mut [u8; GROUP],
    enc: bool,
) {
    // SAFETY: the token proves AVX-512F.
    unsafe { run16_raw(keys, data, enc) }
}
