//! Serpent (Anderson, Biham, Knudsen, 1998) in its bit-sliced form, sixteen
//! blocks at a time on AVX-512.
//!
//! Serpent's S-boxes act on the four 32-bit words of a block bit by bit, so
//! sixteen blocks transposed into four 512-bit registers (register j holds
//! word j of every block) run one round with plain logic. Each S-box output
//! bit is a 4-input boolean function: two `vpternlogd` over three inputs and
//! one `vpternlogd` selecting on the fourth, with the truth tables computed
//! from the S-box tables at compile time. Twelve instructions per S-box.
//!
//! Without AVX-512 the `serpent` crate does the work; it is also the peer the
//! tests compare this implementation against.

use super::{BlockCipher, Direction};
use crate::cpu::SerpentAvx512;

mod avx512;
use zeroize::Zeroizing;

/// The eight S-boxes of the Serpent specification (section 2.2).
const SBOX: [[u8; 16]; 8] = [
    [3, 8, 15, 1, 10, 6, 5, 11, 14, 13, 4, 2, 7, 0, 9, 12],
    [15, 12, 2, 7, 9, 0, 5, 10, 1, 11, 14, 8, 6, 13, 3, 4],
    [8, 6, 7, 9, 3, 12, 10, 15, 13, 1, 14, 4, 0, 11, 5, 2],
    [0, 15, 11, 8, 12, 9, 6, 3, 13, 1, 2, 4, 10, 7, 5, 14],
    [1, 15, 8, 3, 12, 0, 11, 6, 2, 5, 4, 10, 9, 14, 7, 13],
    [15, 5, 2, 11, 4, 10, 9, 12, 0, 3, 14, 8, 13, 6, 7, 1],
    [7, 2, 12, 5, 8, 4, 6, 11, 14, 9, 1, 15, 13, 3, 10, 0],
    [1, 13, 15, 0, 14, 8, 2, 11, 7, 4, 12, 10, 9, 3, 5, 6],
];

const fn inverses() -> [[u8; 16]; 8] {
    let mut inv = [[0u8; 16]; 8];
    let mut s = 0;
    while s < 8 {
        let mut x = 0;
        while x < 16 {
            inv[s][SBOX[s][x] as usize] = x as u8;
            x += 1;
        }
        s += 1;
    }
    inv
}

const INV_SBOX: [[u8; 16]; 8] = inverses();

const PHI: u32 = 0x9e37_79b9;
const ROUNDS: usize = 32;

type Words = [u32; 4];

/// Apply S-box `s` bit-sliced to four words (key schedule only).
fn sbox_words(s: &[u8; 16], w: Words) -> Words {
    let mut out = [0u32; 4];
    for bit in 0..32 {
        let nibble = (0..4).fold(0usize, |n, j| n | ((((w[j] >> bit) & 1) as usize) << j));
        let y = s[nibble];
        for (j, o) in out.iter_mut().enumerate() {
            *o |= (((y >> j) & 1) as u32) << bit;
        }
    }
    out
}

/// Round keys from a 32-byte key (the registry pads shorter keys the way
/// the kernel does).
fn schedule(key: &[u8; 32]) -> Zeroizing<[Words; ROUNDS + 1]> {
    let mut w = Zeroizing::new([0u32; 8 + 4 * (ROUNDS + 1)]);
    for (i, c) in key.chunks_exact(4).enumerate() {
        w[i] = u32::from_le_bytes(c.try_into().unwrap());
    }
    for i in 0..4 * (ROUNDS + 1) {
        w[i + 8] = (w[i] ^ w[i + 3] ^ w[i + 5] ^ w[i + 7] ^ PHI ^ i as u32).rotate_left(11);
    }
    let mut keys = Zeroizing::new([[0u32; 4]; ROUNDS + 1]);
    for (i, k) in keys.iter_mut().enumerate() {
        let words = [w[8 + 4 * i], w[9 + 4 * i], w[10 + 4 * i], w[11 + 4 * i]];
        *k = sbox_words(&SBOX[(ROUNDS + 3 - i) % 8], words);
    }
    keys
}

/// Which implementation runs: the AVX-512 backend (with its token) over
/// the schedule, or the crate.
enum Imp {
    Avx512(SerpentAvx512),
    Portable(Box<dyn BlockCipher>),
}

pub(super) struct Serpent {
    keys: Zeroizing<[Words; ROUNDS + 1]>,
    imp: Imp,
}

impl Serpent {
    /// `key` is the kernel-padded 32-byte key.
    pub(super) fn new(key: &[u8; 32]) -> Self {
        match SerpentAvx512::get() {
            Some(t) => Serpent {
                keys: schedule(key),
                imp: Imp::Avx512(t),
            },
            None => Self::portable(key),
        }
    }

    /// The crate path (also forced by the tests).
    fn portable(key: &[u8; 32]) -> Self {
        Serpent {
            keys: schedule(key),
            imp: Imp::Portable(super::adapter::keyed::<serpent::Serpent>(&key[..])),
        }
    }

    fn run(&self, data: &mut [u8], dir: Direction) {
        match &self.imp {
            Imp::Portable(p) => p.crypt_blocks(data, dir),
            Imp::Avx512(t) => super::in_groups::<{ avx512::GROUP }>(data, |g| {
                avx512::run16(*t, &self.keys, g, dir.is_encrypt())
            }),
        }
    }
}

impl BlockCipher for Serpent {
    fn block_size(&self) -> usize {
        16
    }
    fn encrypt_blocks(&self, data: &mut [u8]) {
        self.run(data, Direction::Encrypt);
    }
    fn decrypt_blocks(&self, data: &mut [u8]) {
        self.run(data, Direction::Decrypt);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_matches, rand_bytes};
    use super::*;

    #[test]
    fn inverse_sboxes_invert() {
        for s in 0..8 {
            for x in 0..16 {
                assert_eq!(INV_SBOX[s][SBOX[s][x] as usize] as usize, x);
            }
        }
    }

    /// Both paths against the crate, for every group size and a tail.
    #[test]
    fn matches_the_serpent_crate() {
        if SerpentAvx512::get().is_none() {
            eprintln!("serpent: no AVX-512 on this CPU; comparing the crate path only");
        }
        let mut seed = 7;
        for len in [16, 48, 256, 272, 512 + 240, 4096] {
            let mut key = [0u8; 32];
            rand_bytes(&mut seed, &mut key);
            let mut data = vec![0u8; len];
            rand_bytes(&mut seed, &mut data);
            let peer = super::super::adapter::keyed::<serpent::Serpent>(&key[..]);
            for ours in [Serpent::new(&key), Serpent::portable(&key)] {
                assert_matches(&ours, &*peer, &data, &format!("{len} bytes"));
            }
        }
    }
}
