//! AES (FIPS-197) on VAES/AVX-512: four blocks per instruction, sixteen in
//! flight, with fused XEX (XTS, LRW) and CBC-decryption loops so whitening
//! and chaining never take a separate pass over memory.
//!
//! The `aes` crate runs eight AES-NI blocks in flight and cannot fuse the
//! mode's XORs; on CPUs without VAES and AVX-512 it does the work, and it is
//! the peer the tests compare this implementation against.

use super::{BlockCipher, Direction};
use zeroize::Zeroizing;

/// Round keys: up to 15 for AES-256.
type Schedule = [[u8; 16]; 15];

const fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut r = 0;
    while b != 0 {
        if b & 1 != 0 {
            r ^= a;
        }
        a = (a << 1) ^ if a & 0x80 != 0 { 0x1b } else { 0 };
        b >>= 1;
    }
    r
}

/// The S-box from its definition: inverse in GF(2^8), then the affine map.
const fn sbox() -> [u8; 256] {
    let mut s = [0u8; 256];
    let mut x = 0;
    while x < 256 {
        let mut inv = 0u8;
        let mut y = 1;
        while x != 0 && y < 256 {
            if gf_mul(x as u8, y as u8) == 1 {
                inv = y as u8;
                break;
            }
            y += 1;
        }
        s[x] = inv
            ^ inv.rotate_left(1)
            ^ inv.rotate_left(2)
            ^ inv.rotate_left(3)
            ^ inv.rotate_left(4)
            ^ 0x63;
        x += 1;
    }
    s
}

const SBOX: [u8; 256] = sbox();

/// Encryption round keys (FIPS-197 section 5.2); returns the round count.
fn expand(key: &[u8]) -> (Zeroizing<Schedule>, usize) {
    let nk = key.len() / 4;
    let rounds = nk + 6;
    let mut w = Zeroizing::new([[0u8; 4]; 60]);
    for (i, c) in key.chunks_exact(4).enumerate() {
        w[i].copy_from_slice(c);
    }
    let mut rcon = 1u8;
    for i in nk..4 * (rounds + 1) {
        let mut t = w[i - 1];
        if i % nk == 0 {
            t = [
                SBOX[t[1] as usize] ^ rcon,
                SBOX[t[2] as usize],
                SBOX[t[3] as usize],
                SBOX[t[0] as usize],
            ];
            rcon = gf_mul(rcon, 2);
        } else if nk > 6 && i % nk == 4 {
            t = t.map(|b| SBOX[b as usize]);
        }
        for j in 0..4 {
            w[i][j] = w[i - nk][j] ^ t[j];
        }
    }
    let mut keys = Zeroizing::new([[0u8; 16]; 15]);
    for (r, k) in keys.iter_mut().enumerate().take(rounds + 1) {
        for j in 0..4 {
            k[4 * j..4 * j + 4].copy_from_slice(&w[4 * r + j]);
        }
    }
    (keys, rounds)
}

pub(super) struct Aes {
    enc: Zeroizing<Schedule>,
    /// Equivalent inverse cipher keys (FIPS-197 section 5.3.5).
    dec: Zeroizing<Schedule>,
    rounds: usize,
    /// The crate, for CPUs without VAES.
    portable: Option<Box<dyn BlockCipher>>,
}

impl Aes {
    /// `key` is 16, 24 or 32 bytes (checked by the registry).
    pub(super) fn new(key: &[u8]) -> Self {
        if !simd::available() {
            return Self::portable(key);
        }
        let (enc, rounds) = expand(key);
        let mut dec = Zeroizing::new([[0u8; 16]; 15]);
        // SAFETY: simd::available() checked the AES-NI feature.
        unsafe { simd::inverse_keys(&enc, rounds, &mut dec) };
        Aes {
            enc,
            dec,
            rounds,
            portable: None,
        }
    }

    /// The crate path (also forced by the tests).
    fn portable(key: &[u8]) -> Self {
        let c = match key.len() {
            16 => super::adapter::keyed::<::aes::Aes128>(key),
            24 => super::adapter::keyed::<::aes::Aes192>(key),
            _ => super::adapter::keyed::<::aes::Aes256>(key),
        };
        let (enc, rounds) = expand(key);
        Aes {
            enc,
            dec: Zeroizing::new([[0u8; 16]; 15]),
            rounds,
            portable: Some(c),
        }
    }
}

impl BlockCipher for Aes {
    fn block_size(&self) -> usize {
        16
    }

    fn encrypt_blocks(&self, data: &mut [u8]) {
        match &self.portable {
            Some(p) => p.encrypt_blocks(data),
            // SAFETY: `portable` is None only when simd::available().
            None => unsafe { simd::xex(&self.enc, self.rounds, data, None, true) },
        }
    }

    fn decrypt_blocks(&self, data: &mut [u8]) {
        match &self.portable {
            Some(p) => p.decrypt_blocks(data),
            // SAFETY: as above.
            None => unsafe { simd::xex(&self.dec, self.rounds, data, None, false) },
        }
    }

    fn xex_blocks(&self, data: &mut [u8], whitening: &[u8], dir: Direction) -> bool {
        if self.portable.is_some() {
            return false;
        }
        let enc = dir.is_encrypt();
        // The SIMD loop reads whitening as far as data reaches.
        assert!(whitening.len() >= data.len(), "whitening shorter than data");
        let keys = if enc { &self.enc } else { &self.dec };
        // SAFETY: as above; lengths checked.
        unsafe { simd::xex(keys, self.rounds, data, Some(whitening), enc) };
        true
    }

    fn xts_blocks(&self, tweak: &mut [u8; 16], data: &mut [u8], dir: Direction) -> bool {
        if self.portable.is_some() {
            return false;
        }
        let enc = dir.is_encrypt();
        let keys = if enc { &self.enc } else { &self.dec };
        // SAFETY: as above.
        unsafe { simd::xts(keys, self.rounds, tweak, data, enc) };
        true
    }

    fn cbc_decrypt_blocks(&self, chain: &mut [u8], data: &mut [u8]) -> bool {
        if self.portable.is_some() {
            return false;
        }
        assert!(chain.len() >= 16, "CBC chain shorter than a block");
        // SAFETY: as above; the chain block is there.
        unsafe { simd::cbc_decrypt(&self.dec, self.rounds, chain, data) };
        true
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod simd {
    pub(super) fn available() -> bool {
        false
    }
    pub(super) unsafe fn inverse_keys(_: &super::Schedule, _: usize, _: &mut super::Schedule) {}
    pub(super) unsafe fn xex(
        _: &super::Schedule,
        _: usize,
        _: &mut [u8],
        _: Option<&[u8]>,
        _: bool,
    ) {
    }
    pub(super) unsafe fn cbc_decrypt(_: &super::Schedule, _: usize, _: &mut [u8], _: &mut [u8]) {}
    pub(super) unsafe fn xts(
        _: &super::Schedule,
        _: usize,
        _: &mut [u8; 16],
        _: &mut [u8],
        _: bool,
    ) {
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::Schedule;
    use core::arch::x86_64::*;

    pub(super) fn available() -> bool {
        crate::cpu::simd_for("aes")
    }

    /// Decryption keys: reversed, InvMixColumns on the inner ones.
    #[target_feature(enable = "aes")]
    pub(super) unsafe fn inverse_keys(enc: &Schedule, rounds: usize, dec: &mut Schedule) {
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
    pub(super) unsafe fn xex(
        keys: &Schedule,
        rounds: usize,
        data: &mut [u8],
        w: Option<&[u8]>,
        enc: bool,
    ) {
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
                    x[0] = _mm512_xor_si512(
                        x[0],
                        _mm512_maskz_loadu_epi64(m, wp.add(i) as *const i64),
                    );
                }
                rounds4::<1, R>(&k, &mut x, ENC);
                if let Some(wp) = wp {
                    x[0] = _mm512_xor_si512(
                        x[0],
                        _mm512_maskz_loadu_epi64(m, wp.add(i) as *const i64),
                    );
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
    pub(super) unsafe fn xts(
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
    pub(super) unsafe fn cbc_decrypt(
        keys: &Schedule,
        rounds: usize,
        chain: &mut [u8],
        data: &mut [u8],
    ) {
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
            let mut carry =
                _mm512_broadcast_i32x4(_mm_loadu_si128(chain.as_ptr() as *const __m128i));
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
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_matches, hex, rand_bytes, xor};
    use super::*;

    /// FIPS-197 appendix C: one block per key size.
    #[test]
    fn fips197_known_answers() {
        let pt = hex("00112233445566778899aabbccddeeff");
        for (key, ct) in [
            (
                "000102030405060708090a0b0c0d0e0f",
                "69c4e0d86a7b0430d8cdb78070b4c55a",
            ),
            (
                "000102030405060708090a0b0c0d0e0f1011121314151617",
                "dda97ca4864cdfe06eaf70a0ec0d7191",
            ),
            (
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                "8ea2b7ca516745bfeafc49904b496089",
            ),
        ] {
            let aes = Aes::new(&hex(key));
            let mut b = pt.clone();
            aes.encrypt_blocks(&mut b);
            assert_eq!(b, hex(ct), "key {key}");
            aes.decrypt_blocks(&mut b);
            assert_eq!(b, pt);
        }
    }

    /// Plain, XEX and CBC paths against the crate for every key size and
    /// lengths that leave every kind of tail.
    #[test]
    fn matches_the_aes_crate() {
        if !simd::available() {
            eprintln!("aes: no VAES/AVX-512 on this CPU; comparing the crate path only");
        }
        let mut seed = 11;
        for klen in [16, 24, 32] {
            for blocks in [1, 2, 3, 4, 5, 7, 15, 16, 17, 19, 32, 35, 256] {
                let mut key = vec![0u8; klen];
                rand_bytes(&mut seed, &mut key);
                let mut data = vec![0u8; blocks * 16];
                rand_bytes(&mut seed, &mut data);
                let mut w = vec![0u8; blocks * 16];
                rand_bytes(&mut seed, &mut w);
                let ours = Aes::new(&key);
                let peer = Aes::portable(&key);

                assert_matches(&ours, &peer, &data, &format!("key {klen}, {blocks} blocks"));

                for dir in [Direction::Encrypt, Direction::Decrypt] {
                    let mut a = data.clone();
                    if ours.xex_blocks(&mut a, &w, dir) {
                        let mut b = data.clone();
                        xor(&mut b, &w);
                        peer.crypt_blocks(&mut b, dir);
                        xor(&mut b, &w);
                        assert_eq!(a, b, "xex {dir:?}, key {klen}, {blocks} blocks");
                    }
                }

                let mut iv = [0u8; 16];
                rand_bytes(&mut seed, &mut iv);
                let mut chain = iv;
                let mut a = data.clone();
                if ours.cbc_decrypt_blocks(&mut chain, &mut a) {
                    let mut b = data.clone();
                    peer.decrypt_blocks(&mut b);
                    let mut prev = iv.to_vec();
                    for (bb, cb) in b.chunks_exact_mut(16).zip(data.chunks_exact(16)) {
                        xor(bb, &prev);
                        prev = cb.to_vec();
                    }
                    assert_eq!(a, b, "cbc, key {klen}, {blocks} blocks");
                    assert_eq!(chain[..], data[data.len() - 16..], "cbc chain out");
                }
            }
        }
    }

    /// The fused XTS path against tweaks doubled one by one and the crate,
    /// for counts around every group boundary, and the tweak it leaves.
    #[test]
    fn fused_xts_matches_doubling_block_by_block() {
        let mut seed = 23;
        for klen in [16, 32] {
            let mut key = vec![0u8; klen];
            rand_bytes(&mut seed, &mut key);
            let ours = Aes::new(&key);
            let peer = Aes::portable(&key);
            for blocks in [1, 3, 4, 5, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 256] {
                let mut tweak = [0u8; 16];
                rand_bytes(&mut seed, &mut tweak);
                let mut data = vec![0u8; blocks * 16];
                rand_bytes(&mut seed, &mut data);
                for dir in [Direction::Encrypt, Direction::Decrypt] {
                    let mut t = tweak;
                    let mut a = data.clone();
                    if !ours.xts_blocks(&mut t, &mut a, dir) {
                        return;
                    }
                    let mut tv = u128::from_le_bytes(tweak);
                    let mut b = data.clone();
                    for blk in b.chunks_exact_mut(16) {
                        xor(blk, &tv.to_le_bytes());
                        peer.crypt_blocks(blk, dir);
                        xor(blk, &tv.to_le_bytes());
                        tv = (tv << 1) ^ ((tv >> 127) * 0x87);
                    }
                    assert_eq!(a, b, "key {klen}, {blocks} blocks, {dir:?}");
                    assert_eq!(t, tv.to_le_bytes(), "tweak after {blocks} blocks");
                }
            }
        }
    }
}
