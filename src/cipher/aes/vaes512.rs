//! AES on VAES with AVX-512: 32 blocks in flight (four 128-bit lanes per
//! register, eight registers), fused XEX (xts, lrw), XTS with the tweaks
//! made in registers, and CBC decryption. x86_64 only; reached through
//! `cpu::AesVaes512`.

#![allow(unsafe_code)]

use super::Schedule;
use crate::cpu::AesVaes512;
use core::arch::x86_64::*;

// Safe entry points: each takes the token, which exists only on a CPU with
// every feature the `target_feature` functions below enable.

/// Decryption keys: reversed, InvMixColumns on the inner ones.
pub(super) fn inverse_keys(_: AesVaes512, enc: &Schedule, rounds: usize, dec: &mut Schedule) {
    // SAFETY: the token proves AES-NI.
    unsafe { inverse_keys_raw(enc, rounds, dec) }
}

/// `data[i] = AES(data[i] ^ w[i]) ^ w[i]`, or plain AES when `w` is None.
pub(super) fn xex(
    _: AesVaes512,
    keys: &Schedule,
    rounds: usize,
    data: &mut [u8],
    w: Option<&[u8]>,
    enc: bool,
) {
    // The loop reads the whitening as far as the data reaches.
    assert!(
        w.is_none_or(|w| w.len() >= data.len()),
        "whitening shorter than data"
    );
    // SAFETY: the token proves AVX-512F and VAES; lengths checked above.
    unsafe { xex_raw(keys, rounds, data, w, enc) }
}

/// XTS over whole blocks from `tweak` (left at the next tweak).
pub(super) fn xts(
    _: AesVaes512,
    keys: &Schedule,
    rounds: usize,
    tweak: &mut [u8; 16],
    data: &mut [u8],
    enc: bool,
) {
    // SAFETY: the token proves AVX-512F/BW, VAES and VPCLMULQDQ.
    unsafe { xts_raw(keys, rounds, tweak, data, enc) }
}

/// CBC decryption with `chain` holding the previous ciphertext block.
pub(super) fn cbc_decrypt(
    _: AesVaes512,
    keys: &Schedule,
    rounds: usize,
    chain: &mut [u8],
    data: &mut [u8],
) {
    assert!(chain.len() >= 16, "CBC chain shorter than a block");
    // SAFETY: the token proves AVX-512F and VAES; the chain block is there.
    unsafe { cbc_decrypt_raw(keys, rounds, chain, data) }
}

/// Decryption keys: reversed, InvMixColumns on the inner ones.
#[target_feature(enable = "aes")]
unsafe fn inverse_keys_raw(enc: &Schedule, rounds: usize, dec: &mut Schedule) {
    unsafe {
        for r in 0..=rounds {
            let k = _mm_loadu_si128(enc[rounds - r].as_ptr() as *const __m128i);
            let k = if r == 0 || r == rounds {
                k
            } else {
                _mm_aesimc_si128(k)
            };
            _mm_storeu_si128(dec[r].as_mut_ptr() as *mut __m128i, k);
        }
    }
}

/// Round keys broadcast to all four lanes.
#[inline(always)]
unsafe fn wide_keys(keys: &Schedule, rounds: usize) -> [__m512i; 15] {
    unsafe {
        let mut k = [_mm512_setzero_si512(); 15];
        for (r, w) in k.iter_mut().enumerate().take(rounds + 1) {
            *w = _mm512_broadcast_i32x4(_mm_loadu_si128(keys[r].as_ptr() as *const __m128i));
        }
        k
    }
}

#[inline(always)]
unsafe fn rounds4<const N: usize, const R: usize>(
    k: &[__m512i; 15],
    x: &mut [__m512i; N],
    enc: bool,
) {
    unsafe {
        for v in x.iter_mut() {
            *v = _mm512_xor_si512(*v, k[0]);
        }
        for key in &k[1..R] {
            for v in x.iter_mut() {
                *v = if enc {
                    _mm512_aesenc_epi128(*v, *key)
                } else {
                    _mm512_aesdec_epi128(*v, *key)
                };
            }
        }
        for v in x.iter_mut() {
            *v = if enc {
                _mm512_aesenclast_epi128(*v, k[R])
            } else {
                _mm512_aesdeclast_epi128(*v, k[R])
            };
        }
    }
}

/// Mask of the 64-bit lanes that hold the first `blocks` blocks.
fn lanes(blocks: usize) -> __mmask8 {
    ((1u16 << (2 * blocks)) - 1) as __mmask8
}

/// `data[i] = AES(data[i] ^ w[i]) ^ w[i]`, or plain AES when `w` is None.
#[target_feature(enable = "avx512f,vaes")]
unsafe fn xex_raw(keys: &Schedule, rounds: usize, data: &mut [u8], w: Option<&[u8]>, enc: bool) {
    unsafe {
        match (rounds, enc) {
            (10, true) => xex_r::<10, true>(keys, data, w),
            (12, true) => xex_r::<12, true>(keys, data, w),
            (14, true) => xex_r::<14, true>(keys, data, w),
            (10, false) => xex_r::<10, false>(keys, data, w),
            (12, false) => xex_r::<12, false>(keys, data, w),
            _ => xex_r::<14, false>(keys, data, w),
        }
    }
}

#[inline(always)]
unsafe fn xex_r<const R: usize, const ENC: bool>(
    keys: &Schedule,
    data: &mut [u8],
    w: Option<&[u8]>,
) {
    unsafe {
        let k = wide_keys(keys, R);
        let p = data.as_mut_ptr() as *mut __m512i;
        let wp = w.map(|w| w.as_ptr() as *const __m512i);
        let whiten = |x: &mut [__m512i], at: usize| {
            if let Some(wp) = wp {
                for (j, v) in x.iter_mut().enumerate() {
                    *v = _mm512_xor_si512(*v, _mm512_loadu_si512(wp.add(at + j)));
                }
            }
        };
        let blocks = data.len() / 16;
        let mut i = 0; // in 64-byte units
        while (i + 4) * 4 <= blocks {
            let mut x = [
                _mm512_loadu_si512(p.add(i)),
                _mm512_loadu_si512(p.add(i + 1)),
                _mm512_loadu_si512(p.add(i + 2)),
                _mm512_loadu_si512(p.add(i + 3)),
            ];
            whiten(&mut x, i);
            rounds4::<4, R>(&k, &mut x, ENC);
            whiten(&mut x, i);
            for (j, v) in x.iter().enumerate() {
                _mm512_storeu_si512(p.add(i + j), *v);
            }
            i += 4;
        }
        while i * 4 < blocks {
            let m = lanes((blocks - i * 4).min(4));
            let mut x = [_mm512_maskz_loadu_epi64(m, p.add(i) as *const i64)];
            if let Some(wp) = wp {
                x[0] = _mm512_xor_si512(x[0], _mm512_maskz_loadu_epi64(m, wp.add(i) as *const i64));
            }
            rounds4::<1, R>(&k, &mut x, ENC);
            if let Some(wp) = wp {
                x[0] = _mm512_xor_si512(x[0], _mm512_maskz_loadu_epi64(m, wp.add(i) as *const i64));
            }
            _mm512_mask_storeu_epi64(p.add(i) as *mut i64, m, x[0]);
            i += 1;
        }
    }
}

/// XTS over whole blocks with the tweaks made in registers: 32 in
/// flight, each advanced by x^32 per step (a shift and one carry-less
/// multiply of the bits shifted out by the reduction constant 0x87).
#[target_feature(enable = "avx512f,avx512bw,vaes,vpclmulqdq")]
unsafe fn xts_raw(
    keys: &Schedule,
    rounds: usize,
    tweak: &mut [u8; 16],
    data: &mut [u8],
    enc: bool,
) {
    unsafe {
        match (rounds, enc) {
            (10, true) => xts_r::<10, true>(keys, tweak, data),
            (12, true) => xts_r::<12, true>(keys, tweak, data),
            (14, true) => xts_r::<14, true>(keys, tweak, data),
            (10, false) => xts_r::<10, false>(keys, tweak, data),
            (12, false) => xts_r::<12, false>(keys, tweak, data),
            _ => xts_r::<14, false>(keys, tweak, data),
        }
    }
}

/// Each 128-bit lane times x^S in GF(2^128), XTS (little-endian) order,
/// for S <= 32: the S bits shifted out of the top come back reduced,
/// multiplied (carry-less) by 0x87.
#[inline(always)]
unsafe fn times_x<const S: u32, const OUT: u32>(t: __m512i, poly: __m512i) -> __m512i {
    unsafe {
        let out = _mm512_srli_epi64::<OUT>(t);
        let reduced = _mm512_clmulepi64_epi128::<0x01>(out, poly);
        // Bits crossing from the low into the high qword.
        let carried = _mm512_bslli_epi128::<8>(out);
        _mm512_ternarylogic_epi64::<0x96>(_mm512_slli_epi64::<S>(t), reduced, carried)
    }
}

/// Registers of four blocks each in flight: enough independent AES
/// chains to cover the instruction's latency.
const XTS_REGS: usize = 8;

#[inline(always)]
unsafe fn xts_r<const R: usize, const ENC: bool>(
    keys: &Schedule,
    tweak: &mut [u8; 16],
    data: &mut [u8],
) {
    unsafe {
        let k = wide_keys(keys, R);
        let poly = _mm512_set1_epi64(0x87);
        // Tweaks 0..16 doubled one by one, 16..32 as those times x^16;
        // then every lane steps by x^32.
        let mut first = [0u128; 16];
        let mut t = u128::from_le_bytes(*tweak);
        for f in first.iter_mut() {
            *f = t;
            t = (t << 1) ^ ((t >> 127) * 0x87);
        }
        let fp = first.as_ptr() as *const __m512i;
        let mut tw = [_mm512_setzero_si512(); XTS_REGS];
        for j in 0..4 {
            tw[j] = _mm512_loadu_si512(fp.add(j));
            tw[j + 4] = times_x::<16, 48>(tw[j], poly);
        }
        let p = data.as_mut_ptr() as *mut __m512i;
        let blocks = data.len() / 16;
        let mut i = 0; // in 64-byte units
        while (i + XTS_REGS) * 4 <= blocks {
            let mut x = [_mm512_setzero_si512(); XTS_REGS];
            for j in 0..XTS_REGS {
                x[j] = _mm512_xor_si512(_mm512_loadu_si512(p.add(i + j)), tw[j]);
            }
            rounds4::<XTS_REGS, R>(&k, &mut x, ENC);
            for j in 0..XTS_REGS {
                _mm512_storeu_si512(p.add(i + j), _mm512_xor_si512(x[j], tw[j]));
                tw[j] = times_x::<32, 32>(tw[j], poly);
            }
            i += XTS_REGS;
        }
        // Fewer than a group of blocks left: they take the tweaks in `tw`.
        let rest = blocks - i * 4;
        for (j, w) in tw.iter().enumerate() {
            if j * 4 >= rest {
                break;
            }
            let m = lanes((rest - j * 4).min(4));
            let mut x = [_mm512_xor_si512(
                _mm512_maskz_loadu_epi64(m, p.add(i + j) as *const i64),
                *w,
            )];
            rounds4::<1, R>(&k, &mut x, ENC);
            _mm512_mask_storeu_epi64(p.add(i + j) as *mut i64, m, _mm512_xor_si512(x[0], *w));
        }
        let mut next = [0u128; 4 * XTS_REGS];
        let np = next.as_mut_ptr() as *mut __m512i;
        for (j, w) in tw.iter().enumerate() {
            _mm512_storeu_si512(np.add(j), *w);
        }
        *tweak = next[rest].to_le_bytes();
    }
}

/// CBC decryption: `data[i] = AES^-1(c[i]) ^ c[i-1]`, `c[-1]` taken
/// from `chain`, which receives the last ciphertext block.
#[target_feature(enable = "avx512f,vaes")]
unsafe fn cbc_decrypt_raw(keys: &Schedule, rounds: usize, chain: &mut [u8], data: &mut [u8]) {
    unsafe {
        match rounds {
            10 => cbc_r::<10>(keys, chain, data),
            12 => cbc_r::<12>(keys, chain, data),
            _ => cbc_r::<14>(keys, chain, data),
        }
    }
}

#[inline(always)]
unsafe fn cbc_r<const R: usize>(keys: &Schedule, chain: &mut [u8], data: &mut [u8]) {
    unsafe {
        let k = wide_keys(keys, R);
        let p = data.as_mut_ptr() as *mut __m512i;
        // The previous ciphertext block sits in the top lane of `carry`.
        let mut carry = _mm512_broadcast_i32x4(_mm_loadu_si128(chain.as_ptr() as *const __m128i));
        let blocks = data.len() / 16;
        let mut i = 0;
        while (i + 4) * 4 <= blocks {
            let c = [
                _mm512_loadu_si512(p.add(i)),
                _mm512_loadu_si512(p.add(i + 1)),
                _mm512_loadu_si512(p.add(i + 2)),
                _mm512_loadu_si512(p.add(i + 3)),
            ];
            let mut x = c;
            rounds4::<4, R>(&k, &mut x, false);
            let prev = [
                _mm512_alignr_epi64::<6>(c[0], carry),
                _mm512_alignr_epi64::<6>(c[1], c[0]),
                _mm512_alignr_epi64::<6>(c[2], c[1]),
                _mm512_alignr_epi64::<6>(c[3], c[2]),
            ];
            for j in 0..4 {
                _mm512_storeu_si512(p.add(i + j), _mm512_xor_si512(x[j], prev[j]));
            }
            carry = c[3];
            i += 4;
        }
        while i * 4 < blocks {
            let n = (blocks - i * 4).min(4);
            let m = lanes(n);
            let c = _mm512_maskz_loadu_epi64(m, p.add(i) as *const i64);
            let mut x = [c];
            rounds4::<1, R>(&k, &mut x, false);
            let prev = _mm512_alignr_epi64::<6>(c, carry);
            _mm512_mask_storeu_epi64(p.add(i) as *mut i64, m, _mm512_xor_si512(x[0], prev));
            // Block n-1 of `c` to every lane (the top one is what counts).
            let (h, l) = (2 * n as i64 - 1, 2 * n as i64 - 2);
            carry = _mm512_permutexvar_epi64(_mm512_set_epi64(h, l, h, l, h, l, h, l), c);
            i += 1;
        }
        let last = _mm512_extracti32x4_epi32::<3>(carry);
        _mm_storeu_si128(chain.as_mut_ptr() as *mut __m128i, last);
    }
}
