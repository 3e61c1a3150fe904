//! AES on VAES with 256-bit registers (AMD Zen 3, Intel Alder Lake: VAES
//! and VPCLMULQDQ without AVX-512): two blocks per instruction, sixteen in
//! flight, fused XEX (xts, lrw), XTS with the tweaks made in registers,
//! and CBC decryption. Tails shorter than a register run on the 128-bit
//! AES-NI instructions. Reached through `cpu::AesVaes256`.

#![allow(unsafe_code)]

use super::Schedule;
use crate::cpu::AesVaes256;
use core::arch::x86_64::*;

/// Registers of two blocks in flight.
const REGS: usize = 8;
/// Blocks per group.
const GROUP: usize = 2 * REGS;

/// Decryption keys: reversed, InvMixColumns on the inner ones.
pub(super) fn inverse_keys(_: AesVaes256, enc: &Schedule, rounds: usize, dec: &mut Schedule) {
    // SAFETY: the token proves AES-NI.
    unsafe { super::aesni::inverse_keys_raw(enc, rounds, dec) }
}

/// `data[i] = AES(data[i] ^ w[i]) ^ w[i]`, or plain AES when `w` is None.
pub(super) fn xex(
    _: AesVaes256,
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
    // SAFETY: the token proves AVX2, VAES and AES-NI; lengths checked above.
    unsafe { xex_raw(keys, rounds, data, w, enc) }
}

/// XTS over whole blocks from `tweak` (left at the next tweak).
pub(super) fn xts(
    _: AesVaes256,
    keys: &Schedule,
    rounds: usize,
    tweak: &mut [u8; 16],
    data: &mut [u8],
    enc: bool,
) {
    // SAFETY: the token proves AVX2, VAES, VPCLMULQDQ and AES-NI.
    unsafe { xts_raw(keys, rounds, tweak, data, enc) }
}

/// CBC decryption with `chain` holding the previous ciphertext block.
pub(super) fn cbc_decrypt(
    _: AesVaes256,
    keys: &Schedule,
    rounds: usize,
    chain: &mut [u8],
    data: &mut [u8],
) {
    assert!(chain.len() >= 16, "CBC chain shorter than a block");
    // SAFETY: the token proves AVX2, VAES and AES-NI; the chain block is there.
    unsafe { cbc_decrypt_raw(keys, rounds, chain, data) }
}

struct Keys {
    wide: [__m256i; 15],
    narrow: [__m128i; 15],
}

#[inline(always)]
unsafe fn load_keys(keys: &Schedule, rounds: usize) -> Keys {
    unsafe {
        let mut k = Keys {
            wide: [_mm256_setzero_si256(); 15],
            narrow: [_mm_setzero_si128(); 15],
        };
        for (r, key) in keys.iter().enumerate().take(rounds + 1) {
            let n = _mm_loadu_si128(key.as_ptr() as *const __m128i);
            k.narrow[r] = n;
            k.wide[r] = _mm256_broadcastsi128_si256(n);
        }
        k
    }
}

#[inline(always)]
unsafe fn rounds2<const N: usize, const R: usize, const ENC: bool>(k: &Keys, x: &mut [__m256i; N]) {
    unsafe {
        for v in x.iter_mut() {
            *v = _mm256_xor_si256(*v, k.wide[0]);
        }
        for key in &k.wide[1..R] {
            for v in x.iter_mut() {
                *v = if ENC {
                    _mm256_aesenc_epi128(*v, *key)
                } else {
                    _mm256_aesdec_epi128(*v, *key)
                };
            }
        }
        for v in x.iter_mut() {
            *v = if ENC {
                _mm256_aesenclast_epi128(*v, k.wide[R])
            } else {
                _mm256_aesdeclast_epi128(*v, k.wide[R])
            };
        }
    }
}

/// One block on the 128-bit instructions (tails).
#[inline(always)]
unsafe fn one<const R: usize, const ENC: bool>(k: &Keys, x: __m128i) -> __m128i {
    unsafe {
        let mut v = _mm_xor_si128(x, k.narrow[0]);
        for key in &k.narrow[1..R] {
            v = if ENC {
                _mm_aesenc_si128(v, *key)
            } else {
                _mm_aesdec_si128(v, *key)
            };
        }
        if ENC {
            _mm_aesenclast_si128(v, k.narrow[R])
        } else {
            _mm_aesdeclast_si128(v, k.narrow[R])
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

#[target_feature(enable = "avx2,vaes,aes")]
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
        let p = data.as_mut_ptr();
        let wp = w.map(|w| w.as_ptr());
        let blocks = data.len() / 16;
        let mut i = 0; // blocks
        while i + GROUP <= blocks {
            let mut x = [_mm256_setzero_si256(); REGS];
            let mut wv = [_mm256_setzero_si256(); REGS];
            for j in 0..REGS {
                x[j] = _mm256_loadu_si256(p.add(16 * (i + 2 * j)) as *const __m256i);
                if let Some(wp) = wp {
                    wv[j] = _mm256_loadu_si256(wp.add(16 * (i + 2 * j)) as *const __m256i);
                    x[j] = _mm256_xor_si256(x[j], wv[j]);
                }
            }
            rounds2::<REGS, R, ENC>(&k, &mut x);
            for j in 0..REGS {
                _mm256_storeu_si256(
                    p.add(16 * (i + 2 * j)) as *mut __m256i,
                    _mm256_xor_si256(x[j], wv[j]),
                );
            }
            i += GROUP;
        }
        while i < blocks {
            let wv = wp.map_or(_mm_setzero_si128(), |wp| {
                _mm_loadu_si128(wp.add(16 * i) as *const __m128i)
            });
            let x = _mm_xor_si128(_mm_loadu_si128(p.add(16 * i) as *const __m128i), wv);
            let y = one::<R, ENC>(&k, x);
            _mm_storeu_si128(p.add(16 * i) as *mut __m128i, _mm_xor_si128(y, wv));
            i += 1;
        }
    }
}

/// Each 128-bit lane times x^S in GF(2^128), XTS order, for S <= 32: the
/// bits shifted out of the top come back multiplied (carry-less) by 0x87.
#[inline(always)]
unsafe fn times_x<const S: i32, const OUT: i32>(t: __m256i, poly: __m256i) -> __m256i {
    unsafe {
        let out = _mm256_srli_epi64::<OUT>(t);
        let reduced = _mm256_clmulepi64_epi128::<0x01>(out, poly);
        let carried = _mm256_bslli_epi128::<8>(out);
        _mm256_xor_si256(
            _mm256_xor_si256(_mm256_slli_epi64::<S>(t), reduced),
            carried,
        )
    }
}

#[target_feature(enable = "avx2,vaes,vpclmulqdq,aes")]
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
        let poly = _mm256_set1_epi64x(0x87);
        // The first sixteen tweaks doubled one by one; then every lane
        // steps by x^16 per group.
        let mut first = [0u128; GROUP];
        let mut t = u128::from_le_bytes(*tweak);
        for f in first.iter_mut() {
            *f = t;
            t = (t << 1) ^ ((t >> 127) * 0x87);
        }
        let mut tw = [_mm256_setzero_si256(); REGS];
        for (j, w) in tw.iter_mut().enumerate() {
            *w = _mm256_loadu_si256(first.as_ptr().add(2 * j) as *const __m256i);
        }
        let p = data.as_mut_ptr();
        let blocks = data.len() / 16;
        let mut i = 0;
        while i + GROUP <= blocks {
            let mut x = [_mm256_setzero_si256(); REGS];
            for j in 0..REGS {
                x[j] = _mm256_xor_si256(
                    _mm256_loadu_si256(p.add(16 * (i + 2 * j)) as *const __m256i),
                    tw[j],
                );
            }
            rounds2::<REGS, R, ENC>(&k, &mut x);
            for j in 0..REGS {
                _mm256_storeu_si256(
                    p.add(16 * (i + 2 * j)) as *mut __m256i,
                    _mm256_xor_si256(x[j], tw[j]),
                );
                tw[j] = times_x::<16, 48>(tw[j], poly);
            }
            i += GROUP;
        }
        // Fewer than a group left: they take the tweaks in `tw`, in order.
        let mut next = [0u128; GROUP];
        for (j, w) in tw.iter().enumerate() {
            _mm256_storeu_si256(next.as_mut_ptr().add(2 * j) as *mut __m256i, *w);
        }
        let rest = blocks - i;
        for (b, tv) in next.iter().enumerate().take(rest) {
            let tv = _mm_loadu_si128(tv as *const u128 as *const __m128i);
            let at = p.add(16 * (i + b)) as *mut __m128i;
            let y = one::<R, ENC>(&k, _mm_xor_si128(_mm_loadu_si128(at), tv));
            _mm_storeu_si128(at, _mm_xor_si128(y, tv));
        }
        *tweak = next[rest].to_le_bytes();
    }
}

#[target_feature(enable = "avx2,vaes,aes")]
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
        let k = load_keys(keys, R);
        let p = data.as_mut_ptr();
        // The previous ciphertext block sits in the high lane of `carry`.
        let mut carry =
            _mm256_broadcastsi128_si256(_mm_loadu_si128(chain.as_ptr() as *const __m128i));
        let blocks = data.len() / 16;
        let mut i = 0;
        while i + GROUP <= blocks {
            let mut c = [_mm256_setzero_si256(); REGS];
            for (j, v) in c.iter_mut().enumerate() {
                *v = _mm256_loadu_si256(p.add(16 * (i + 2 * j)) as *const __m256i);
            }
            let mut x = c;
            rounds2::<REGS, R, false>(&k, &mut x);
            for j in 0..REGS {
                let before = if j == 0 { carry } else { c[j - 1] };
                // [before's high block, this register's low block]
                let prev = _mm256_permute2x128_si256::<0x21>(before, c[j]);
                _mm256_storeu_si256(
                    p.add(16 * (i + 2 * j)) as *mut __m256i,
                    _mm256_xor_si256(x[j], prev),
                );
            }
            carry = c[REGS - 1];
            i += GROUP;
        }
        let mut prev = _mm256_extracti128_si256::<1>(carry);
        while i < blocks {
            let at = p.add(16 * i) as *mut __m128i;
            let c = _mm_loadu_si128(at);
            _mm_storeu_si128(at, _mm_xor_si128(one::<R, false>(&k, c), prev));
            prev = c;
            i += 1;
        }
        _mm_storeu_si128(chain.as_mut_ptr() as *mut __m128i, prev);
    }
}
