//! AES (FIPS-197) with fused XEX (XTS, LRW) and CBC-decryption loops so
//! whitening and chaining never take a separate pass over memory, one
//! backend per instruction tier: VAES on AVX-512 registers (`vaes512.rs`),
//! VAES on 256-bit registers (`vaes256.rs`), AES-NI (`aesni.rs`).
//!
//! The `aes` crate runs eight AES-NI blocks in flight but cannot fuse the
//! mode's XORs (the engine then makes a pass per XOR); it does the work when
//! no backend may run, and it is the peer the tests compare every backend
//! against.

use super::{BlockCipher, Direction};
use crate::cpu::{AesNi, AesVaes256, AesVaes512};

mod aesni;
mod vaes256;
mod vaes512;
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

/// Which implementation runs: a backend (with its token) or the crate.
enum Imp {
    Vaes512(AesVaes512),
    Vaes256(AesVaes256),
    Aesni(AesNi),
    Portable(Box<dyn BlockCipher>),
}

pub(super) struct Aes {
    enc: Zeroizing<Schedule>,
    /// Equivalent inverse cipher keys (FIPS-197 section 5.3.5).
    dec: Zeroizing<Schedule>,
    rounds: usize,
    imp: Imp,
    /// AES-NI for serial CBC encryption, whatever backend runs the rest.
    serial: Option<AesNi>,
}

/// The SIMD backends this CPU and `DMCH_CPU` allow, best first.
fn backends() -> impl Iterator<Item = Imp> {
    [
        AesVaes512::get().map(Imp::Vaes512),
        AesVaes256::get().map(Imp::Vaes256),
        AesNi::get().map(Imp::Aesni),
    ]
    .into_iter()
    .flatten()
}

impl Aes {
    /// `key` is 16, 24 or 32 bytes (checked by the registry): the best
    /// backend the CPU and `DMCH_CPU` allow, else the crate.
    pub(super) fn new(key: &[u8]) -> Self {
        match backends().next() {
            Some(imp) => Self::with(key, imp),
            None => Self::portable(key),
        }
    }

    /// One instance per backend that may run here, best first, the crate
    /// last (the tests compare them all).
    #[cfg(test)]
    fn every(key: &[u8]) -> Vec<Self> {
        backends()
            .map(|imp| Self::with(key, imp))
            .chain(std::iter::once(Self::portable(key)))
            .collect()
    }

    /// A SIMD backend's instance: the schedule and its inverse.
    fn with(key: &[u8], imp: Imp) -> Self {
        let (enc, rounds) = expand(key);
        let mut dec = Zeroizing::new([[0u8; 16]; 15]);
        match &imp {
            Imp::Vaes512(t) => vaes512::inverse_keys(*t, &enc, rounds, &mut dec),
            Imp::Vaes256(t) => vaes256::inverse_keys(*t, &enc, rounds, &mut dec),
            Imp::Aesni(t) => aesni::inverse_keys(*t, &enc, rounds, &mut dec),
            Imp::Portable(_) => {}
        }
        Aes {
            enc,
            dec,
            rounds,
            imp,
            serial: AesNi::get(),
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
            imp: Imp::Portable(c),
            serial: None,
        }
    }

    /// Which backend this is, for test messages.
    #[cfg(test)]
    fn name(&self) -> &'static str {
        match &self.imp {
            Imp::Vaes512(_) => "vaes512",
            Imp::Vaes256(_) => "vaes256",
            Imp::Aesni(_) => "aesni",
            Imp::Portable(_) => "crate",
        }
    }

    fn keys(&self, dir: Direction) -> &Schedule {
        match dir {
            Direction::Encrypt => &self.enc,
            Direction::Decrypt => &self.dec,
        }
    }
}

impl BlockCipher for Aes {
    fn block_size(&self) -> usize {
        16
    }

    fn encrypt_blocks(&self, data: &mut [u8]) {
        self.crypt_blocks(data, Direction::Encrypt)
    }

    fn decrypt_blocks(&self, data: &mut [u8]) {
        self.crypt_blocks(data, Direction::Decrypt)
    }

    fn crypt_blocks(&self, data: &mut [u8], dir: Direction) {
        let (keys, r, e) = (self.keys(dir), self.rounds, dir.is_encrypt());
        match &self.imp {
            Imp::Vaes512(t) => vaes512::xex(*t, keys, r, data, None, e),
            Imp::Vaes256(t) => vaes256::xex(*t, keys, r, data, None, e),
            Imp::Aesni(t) => aesni::xex(*t, keys, r, data, None, e),
            Imp::Portable(c) => c.crypt_blocks(data, dir),
        }
    }

    fn xex_blocks(&self, data: &mut [u8], whitening: &[u8], dir: Direction) -> bool {
        let (keys, r, e, w) = (
            self.keys(dir),
            self.rounds,
            dir.is_encrypt(),
            Some(whitening),
        );
        match &self.imp {
            Imp::Vaes512(t) => vaes512::xex(*t, keys, r, data, w, e),
            Imp::Vaes256(t) => vaes256::xex(*t, keys, r, data, w, e),
            Imp::Aesni(t) => aesni::xex(*t, keys, r, data, w, e),
            Imp::Portable(_) => return false,
        }
        true
    }

    fn xts_blocks(&self, tweak: &mut [u8; 16], data: &mut [u8], dir: Direction) -> bool {
        let (keys, r, e) = (self.keys(dir), self.rounds, dir.is_encrypt());
        match &self.imp {
            Imp::Vaes512(t) => vaes512::xts(*t, keys, r, tweak, data, e),
            Imp::Vaes256(t) => vaes256::xts(*t, keys, r, tweak, data, e),
            Imp::Aesni(t) => aesni::xts(*t, keys, r, tweak, data, e),
            Imp::Portable(_) => return false,
        }
        true
    }

    fn cbc_encrypt_blocks(&self, chain: &mut [u8], data: &mut [u8]) -> bool {
        match self.serial {
            Some(t) => aesni::cbc_encrypt(t, &self.enc, self.rounds, chain, data),
            None => return false,
        }
        true
    }

    fn cbc_decrypt_blocks(&self, chain: &mut [u8], data: &mut [u8]) -> bool {
        let (keys, r) = (&self.dec, self.rounds);
        match &self.imp {
            Imp::Vaes512(t) => vaes512::cbc_decrypt(*t, keys, r, chain, data),
            Imp::Vaes256(t) => vaes256::cbc_decrypt(*t, keys, r, chain, data),
            Imp::Aesni(t) => aesni::cbc_decrypt(*t, keys, r, chain, data),
            Imp::Portable(_) => return false,
        }
        true
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
            for aes in Aes::every(&hex(key)) {
                let mut b = pt.clone();
                aes.encrypt_blocks(&mut b);
                assert_eq!(b, hex(ct), "{} key {key}", aes.name());
                aes.decrypt_blocks(&mut b);
                assert_eq!(b, pt, "{}", aes.name());
            }
        }
    }

    /// Plain, XEX and CBC paths against the crate for every key size and
    /// lengths that leave every kind of tail.
    #[test]
    fn matches_the_aes_crate() {
        let backends: Vec<&str> = Aes::every(&[0; 16]).iter().map(|a| a.name()).collect();
        println!(
            "aes: comparing {backends:?} with the crate (backends this CPU and DMCH_CPU allow)"
        );
        let mut seed = 11;
        for klen in [16, 24, 32] {
            for blocks in [1, 2, 3, 4, 5, 7, 15, 16, 17, 19, 32, 35, 256] {
                let mut key = vec![0u8; klen];
                rand_bytes(&mut seed, &mut key);
                let mut data = vec![0u8; blocks * 16];
                rand_bytes(&mut seed, &mut data);
                let mut w = vec![0u8; blocks * 16];
                rand_bytes(&mut seed, &mut w);
                let peer = Aes::portable(&key);
                for ours in Aes::every(&key) {
                    let blocks_name = format!("{} key {klen}, {blocks} blocks", ours.name());
                    assert_matches(&ours, &peer, &data, &blocks_name);

                    for dir in [Direction::Encrypt, Direction::Decrypt] {
                        let mut a = data.clone();
                        if ours.xex_blocks(&mut a, &w, dir) {
                            let mut b = data.clone();
                            xor(&mut b, &w);
                            peer.crypt_blocks(&mut b, dir);
                            xor(&mut b, &w);
                            assert_eq!(a, b, "xex {dir:?}, {blocks_name}");
                        }
                    }

                    let mut iv = [0u8; 16];
                    rand_bytes(&mut seed, &mut iv);
                    let mut chain = iv;
                    let mut a = data.clone();
                    if ours.cbc_encrypt_blocks(&mut chain, &mut a) {
                        let mut b = data.clone();
                        let mut prev = iv.to_vec();
                        for bb in b.chunks_exact_mut(16) {
                            xor(bb, &prev);
                            peer.encrypt_blocks(bb);
                            prev = bb.to_vec();
                        }
                        assert_eq!(a, b, "cbc encryption, {blocks_name}");
                        assert_eq!(chain[..], b[b.len() - 16..], "cbc encryption chain out");
                    }
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
                        assert_eq!(a, b, "cbc, {blocks_name}");
                        assert_eq!(chain[..], data[data.len() - 16..], "cbc chain out");
                    }
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
            let peer = Aes::portable(&key);
            for ours in Aes::every(&key) {
                for blocks in [
                    1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 256,
                ] {
                    let mut tweak = [0u8; 16];
                    rand_bytes(&mut seed, &mut tweak);
                    let mut data = vec![0u8; blocks * 16];
                    rand_bytes(&mut seed, &mut data);
                    for dir in [Direction::Encrypt, Direction::Decrypt] {
                        let mut t = tweak;
                        let mut a = data.clone();
                        if !ours.xts_blocks(&mut t, &mut a, dir) {
                            continue;
                        }
                        let mut tv = u128::from_le_bytes(tweak);
                        let mut b = data.clone();
                        for blk in b.chunks_exact_mut(16) {
                            xor(blk, &tv.to_le_bytes());
                            peer.crypt_blocks(blk, dir);
                            xor(blk, &tv.to_le_bytes());
                            tv = (tv << 1) ^ ((tv >> 127) * 0x87);
                        }
                        assert_eq!(a, b, "{} key {klen}, {blocks} blocks, {dir:?}", ours.name());
                        assert_eq!(
                            t,
                            tv.to_le_bytes(),
                            "{} tweak after {blocks} blocks",
                            ours.name()
                        );
                    }
                }
            }
        }
    }
}
