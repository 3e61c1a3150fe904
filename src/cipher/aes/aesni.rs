//! AES on AES-NI with 128-bit registers: eight blocks in flight (the
//! instruction's latency over its throughput on the cores that have no
//! VAES), fused XEX (xts, lrw), XTS with the tweaks doubled in registers,
//! and CBC decryption. Reached through `cpu::AesNi`.

#![allow(unsafe_code)]

use super::Schedule;
use crate::cpu::AesNi;
use core::arch::x86_64::*;

/// Blocks in flight in XTS/XEX: with sixteen XMM registers (no AVX-512),
/// four blocks, their tweaks and the round keys fit without spilling
/// (measured: 4 beats 6 and 8 here).
const LANES: usize = 4;
/// Blocks in flight in CBC decryption (no tweaks to hold: room for more).
const CBC_LANES: usize = 6;

/// Decryption keys: reversed, InvMixColumns on the inner ones.
pub(super) fn inverse_keys(_: AesNi, enc: &Schedule, rounds: usize, dec: &mut Schedule) {
    // SAFETY: the token proves AES-NI.
    unsafe { inverse_keys_raw(enc, rounds, dec) }
}

/// `data[i] = AES(data[i] ^ w[i]) ^ w[i]`, or plain AES when `w` is None.
pub(super) fn xex(
    _: AesNi,
    keys: &Schedule,
    rounds: usize,
    data: &mut [u8],
    w: Option<&[u8]>,
    enc: bool,
) {
    assert!(
        w.is_none_or(|w| w.len() >= data.len()),
        "whitening shorter than data"
    );
    // SAFETY: the token proves AES-NI (and SSE2); lengths checked above.
    unsafe { xex_raw(keys, rounds, data, w, enc) }
}

/// XTS over whole blocks from `tweak` (left at the next tweak).
pub(super) fn xts(
    _: AesNi,
    keys: &Schedule,
    rounds: usize,
    tweak: &mut [u8; 16],
    data: &mut [u8],
    enc: bool,
) {
    // SAFETY: the token proves AES-NI.
    unsafe { xts_raw(keys, rounds, tweak, data, enc) }
}

/// CBC decryption with `chain` holding the previous ciphertext block.
pub(super) fn cbc_decrypt(
    _: AesNi,
    keys: &Schedule,
    rounds: usize,
    chain: &mut [u8],
    data: &mut [u8],
) {
    assert!(chain.len() >= 16, "CBC chain shorter than a block");
    // SAFETY: the token proves AES-NI; the chain block is there.
    unsafe { cbc_raw(keys, rounds, chain, data, false) }
}

/// CBC encryption of whole blocks, serial, `chain` holding the previous
/// ciphertext block in and the last one out. Every AES backend uses it: a
/// chain has one block in flight, so wider registers gain nothing.
pub(super) fn cbc_encrypt(
    _: AesNi,
    keys: &Schedule,
    rounds: usize,
    chain: &mut [u8],
    data: &mut [u8],
) {
    assert!(chain.len() >= 16, "CBC chain shorter than a block");
    // SAFETY: the token proves AES-NI; the chain block is there.
    unsafe { cbc_raw(keys, rounds, chain, data, true) }
}

/// The chain is the latency of R rounds per block: the plaintext is
/// whitened with the first round key before the previous ciphertext
/// arrives, so only one XOR sits between two blocks' rounds.
#[inline(always)]
unsafe fn cbc_enc_r<const R: usize>(keys: &Schedule, chain: &mut [u8], data: &mut [u8]) {
    unsafe {
        let k = load_keys(keys, R);
        let p = data.as_mut_ptr() as *mut __m128i;
        let mut prev = _mm_loadu_si128(chain.as_ptr() as *const __m128i);
        for i in 0..data.len() / 16 {
            let mut x = _mm_xor_si128(_mm_xor_si128(_mm_loadu_si128(p.add(i)), k[0]), prev);
            for key in &k[1..R] {
                x = _mm_aesenc_si128(x, *key);
            }
            prev = _mm_aesenclast_si128(x, k[R]);
            _mm_storeu_si128(p.add(i), prev);
        }
        _mm_storeu_si128(chain.as_mut_ptr() as *mut __m128i, prev);
    }
}

/// # Safety
/// The CPU must have AES-NI.
#[target_feature(enable = "aes")]
pub(super) unsafe fn inverse_keys_raw(enc: &Schedule, rounds: usize, dec: &mut Schedule) {
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

#[inline(always)]
unsafe fn load_keys(keys: &Schedule, rounds: usize) -> [__m128i; 15] {
    unsafe {
        let mut k = [_mm_setzero_si128(); 15];
        for (r, w) in k.iter_mut().enumerate().take(rounds + 1) {
            *w = _mm_loadu_si128(keys[r].as_ptr() as *const __m128i);
        }
        k
    }
}

/// All rounds on `N` independent blocks, round by round so the AES unit
/// always has work while earlier results are in flight.
#[inline(always)]
unsafe fn rounds<const N: usize, const R: usize, const ENC: bool>(
    k: &[__m128i; 15],
    x: &mut [__m128i; N],
) {
    unsafe {
        for v in x.iter_mut() {
            *v = _mm_xor_si128(*v, k[0]);
        }
        for key in &k[1..R] {
            for v in x.iter_mut() {
                *v = if ENC {
                    _mm_aesenc_si128(*v, *key)
                } else {
                    _mm_aesdec_si128(*v, *key)
                };
            }
        }
        for v in x.iter_mut() {
            *v = if ENC {
                _mm_aesenclast_si128(*v, k[R])
            } else {
                _mm_aesdeclast_si128(*v, k[R])
            };
        }
    }
}

macro_rules! by_rounds {
    ($f:ident, $rounds:expr, $enc:expr, $($arg:expr),*) => {
        match ($rounds, $enc) {
            (10, true) => $f::<10, true>($($arg),*),
            (12, true) => $f::<12, true>($($arg),*),
            (14, true) => $f::<14, true>($($arg),*),
            (10, false) => $f::<10, false>($($arg),*),
            (12, false) => $f::<12, false>($($arg),*),
            _ => $f::<14, false>($($arg),*),
        }
    };
}

#[target_feature(enable = "aes,sse2")]
unsafe fn xex_raw(keys: &Schedule, rounds: usize, data: &mut [u8], w: Option<&[u8]>, enc: bool) {
    unsafe { by_rounds!(xex_r, rounds, enc, keys, data, w) }
}

#[inline(always)]
unsafe fn xex_r<const R: usize, const ENC: bool>(
    keys: &Schedule,
    data: &mut [u8],
    w: Option<&[u8]>,
) {
    unsafe {
        let k = load_keys(keys, R);
        let p = data.as_mut_ptr() as *mut __m128i;
        let wp = w.map(|w| w.as_ptr() as *const __m128i);
        let blocks = data.len() / 16;
        let mut i = 0;
        while i + LANES <= blocks {
            let mut x = [_mm_setzero_si128(); LANES];
            let mut wv = [_mm_setzero_si128(); LANES];
            for j in 0..LANES {
                x[j] = _mm_loadu_si128(p.add(i + j));
                if let Some(wp) = wp {
                    wv[j] = _mm_loadu_si128(wp.add(i + j));
                    x[j] = _mm_xor_si128(x[j], wv[j]);
                }
            }
            rounds::<LANES, R, ENC>(&k, &mut x);
            for j in 0..LANES {
                _mm_storeu_si128(p.add(i + j), _mm_xor_si128(x[j], wv[j]));
            }
            i += LANES;
        }
        while i < blocks {
            let wv = wp.map_or(_mm_setzero_si128(), |wp| _mm_loadu_si128(wp.add(i)));
            let mut x = [_mm_xor_si128(_mm_loadu_si128(p.add(i)), wv)];
            rounds::<1, R, ENC>(&k, &mut x);
            _mm_storeu_si128(p.add(i), _mm_xor_si128(x[0], wv));
            i += 1;
        }
    }
}

/// The tweak times x in GF(2^128), XTS order: each 64-bit half shifted
/// left, the bit leaving the low half carried into the high one, the bit
/// leaving the top folded back as 0x87.
#[inline(always)]
unsafe fn double(t: __m128i) -> __m128i {
    unsafe {
        // Sign of each 32-bit word, moved so word 1's (low qword's top)
        // lands in word 2 as 1 and word 3's (the top) in word 0 as 0x87.
        let signs = _mm_srai_epi32::<31>(t);
        let swapped = _mm_shuffle_epi32::<0x13>(signs);
        let carry = _mm_and_si128(swapped, _mm_set_epi32(0, 1, 0, 0x87));
        _mm_xor_si128(_mm_slli_epi64::<1>(t), carry)
    }
}

/// Each tweak of a group times x^LANES: the bits shifted out of each
/// 64-bit half move into the next half or, from the top, come back
/// multiplied (carry-less) by 0x87. Independent per lane, so no chain of
/// doublings stands between one group and the next.
#[inline(always)]
unsafe fn times_x_lanes(t: __m128i, poly: __m128i) -> __m128i {
    const S: i32 = LANES as i32;
    unsafe {
        let out = _mm_srli_epi64::<{ 64 - S }>(t);
        let reduced = _mm_clmulepi64_si128::<0x01>(out, poly);
        let carried = _mm_slli_si128::<8>(out);
        _mm_xor_si128(_mm_xor_si128(_mm_slli_epi64::<S>(t), reduced), carried)
    }
}

#[target_feature(enable = "aes,sse2,pclmulqdq")]
unsafe fn xts_raw(
    keys: &Schedule,
    rounds: usize,
    tweak: &mut [u8; 16],
    data: &mut [u8],
    enc: bool,
) {
    unsafe { by_rounds!(xts_r, rounds, enc, keys, tweak, data) }
}

#[inline(always)]
unsafe fn xts_r<const R: usize, const ENC: bool>(
    keys: &Schedule,
    tweak: &mut [u8; 16],
    data: &mut [u8],
) {
    unsafe {
        let k = load_keys(keys, R);
        let p = data.as_mut_ptr() as *mut __m128i;
        let poly = _mm_set_epi64x(0, 0x87);
        let mut t = _mm_loadu_si128(tweak.as_ptr() as *const __m128i);
        let blocks = data.len() / 16;
        let mut i = 0;
        if blocks >= LANES {
            let mut tw = [_mm_setzero_si128(); LANES];
            for w in tw.iter_mut() {
                *w = t;
                t = double(t);
            }
            while i + LANES <= blocks {
                let mut x = [_mm_setzero_si128(); LANES];
                for j in 0..LANES {
                    x[j] = _mm_xor_si128(_mm_loadu_si128(p.add(i + j)), tw[j]);
                }
                rounds::<LANES, R, ENC>(&k, &mut x);
                for j in 0..LANES {
                    _mm_storeu_si128(p.add(i + j), _mm_xor_si128(x[j], tw[j]));
                    tw[j] = times_x_lanes(tw[j], poly);
                }
                i += LANES;
            }
            // The next block's tweak is the first lane's, stepped.
            t = tw[0];
        }
        while i < blocks {
            let mut x = [_mm_xor_si128(_mm_loadu_si128(p.add(i)), t)];
            rounds::<1, R, ENC>(&k, &mut x);
            _mm_storeu_si128(p.add(i), _mm_xor_si128(x[0], t));
            t = double(t);
            i += 1;
        }
        _mm_storeu_si128(tweak.as_mut_ptr() as *mut __m128i, t);
    }
}

#[target_feature(enable = "aes,sse2")]
unsafe fn cbc_raw(keys: &Schedule, rounds: usize, chain: &mut [u8], data: &mut [u8], enc: bool) {
    unsafe { by_rounds!(cbc_any, rounds, enc, keys, chain, data) }
}

#[inline(always)]
unsafe fn cbc_any<const R: usize, const ENC: bool>(
    keys: &Schedule,
    chain: &mut [u8],
    data: &mut [u8],
) {
    unsafe {
        if ENC {
            cbc_enc_r::<R>(keys, chain, data)
        } else {
            cbc_r::<R>(keys, chain, data)
        }
    }
}

/// CBC decryption: every block's decryption is independent, only the
/// final XOR needs the ciphertext before it.
#[inline(always)]
unsafe fn cbc_r<const R: usize>(keys: &Schedule, chain: &mut [u8], data: &mut [u8]) {
    unsafe {
        let k = load_keys(keys, R);
        let p = data.as_mut_ptr() as *mut __m128i;
        let mut prev = _mm_loadu_si128(chain.as_ptr() as *const __m128i);
        let blocks = data.len() / 16;
        let mut i = 0;
        while i + CBC_LANES <= blocks {
            let mut c = [_mm_setzero_si128(); CBC_LANES];
            for (j, v) in c.iter_mut().enumerate() {
                *v = _mm_loadu_si128(p.add(i + j));
            }
            let mut x = c;
            rounds::<CBC_LANES, R, false>(&k, &mut x);
            _mm_storeu_si128(p.add(i), _mm_xor_si128(x[0], prev));
            for j in 1..CBC_LANES {
                _mm_storeu_si128(p.add(i + j), _mm_xor_si128(x[j], c[j - 1]));
            }
            prev = c[CBC_LANES - 1];
            i += CBC_LANES;
        }
        while i < blocks {
            let c = _mm_loadu_si128(p.add(i));
            let mut x = [c];
            rounds::<1, R, false>(&k, &mut x);
            _mm_storeu_si128(p.add(i), _mm_xor_si128(x[0], prev));
            prev = c;
            i += 1;
        }
        _mm_storeu_si128(chain.as_mut_ptr() as *mut __m128i, prev);
    }
}
