//! CAST-128 (RFC 2144), own implementation: eight blocks interleaved so
//! the S-box loads of one block hide the latency of another's (the crate
//! runs one block at a time). The S-boxes are the RFC's, imported as data
//! (`sboxes.rs`); the key schedule follows section 2.4.

mod sboxes;

use super::BlockCipher;
use sboxes::S;
use zeroize::Zeroize;

/// Blocks processed side by side.
const WIDE: usize = 8;

pub(super) struct Cast5 {
    /// Masking subkeys Km1..Km16.
    km: [u32; 16],
    /// Rotation subkeys Kr1..Kr16 (five bits each).
    kr: [u32; 16],
    /// 12 rounds for keys of 80 bits or fewer, else 16.
    rounds: usize,
}

impl Drop for Cast5 {
    fn drop(&mut self) {
        self.km.zeroize();
        self.kr.zeroize();
    }
}

/// `S5[y[a]] ^ S6[y[b]] ^ S7[y[c]] ^ S8[y[d]]`: the four S-box terms of
/// a key schedule line, over the bytes of state `y`.
fn q(y: &[u8; 16], a: usize, b: usize, c: usize, d: usize) -> u32 {
    S[4][y[a] as usize] ^ S[5][y[b] as usize] ^ S[6][y[c] as usize] ^ S[7][y[d] as usize]
}

/// The fifth term of a line: S-box `n` (5..=8) at byte `i` of `y`.
fn e(n: usize, y: &[u8; 16], i: usize) -> u32 {
    S[n - 1][y[i] as usize]
}

fn put(y: &mut [u8; 16], word: usize, v: u32) {
    y[4 * word..4 * word + 4].copy_from_slice(&v.to_be_bytes());
}

fn get(y: &[u8; 16], word: usize) -> u32 {
    u32::from_be_bytes(y[4 * word..4 * word + 4].try_into().unwrap())
}

/// z from x (the first and third blocks of lines in section 2.4).
fn z_from_x(x: &[u8; 16], z: &mut [u8; 16]) {
    put(z, 0, get(x, 0) ^ q(x, 0xD, 0xF, 0xC, 0xE) ^ e(7, x, 0x8));
    put(z, 1, get(x, 2) ^ q(z, 0x0, 0x2, 0x1, 0x3) ^ e(8, x, 0xA));
    put(z, 2, get(x, 3) ^ q(z, 0x7, 0x6, 0x5, 0x4) ^ e(5, x, 0x9));
    put(z, 3, get(x, 1) ^ q(z, 0xA, 0x9, 0xB, 0x8) ^ e(6, x, 0xB));
}

/// x from z (the second and fourth blocks of lines).
fn x_from_z(z: &[u8; 16], x: &mut [u8; 16]) {
    put(x, 0, get(z, 2) ^ q(z, 0x5, 0x7, 0x4, 0x6) ^ e(7, z, 0x0));
    put(x, 1, get(z, 0) ^ q(x, 0x0, 0x2, 0x1, 0x3) ^ e(8, z, 0x2));
    put(x, 2, get(z, 1) ^ q(x, 0x7, 0x6, 0x5, 0x4) ^ e(5, z, 0x1));
    put(x, 3, get(z, 3) ^ q(x, 0xA, 0x9, 0xB, 0x8) ^ e(6, z, 0x3));
}

/// The 32 subkeys K1..K32 of RFC 2144 section 2.4 from the zero-padded
/// key: the same sixteen lines twice, the state carried over.
fn schedule(key: &[u8; 16]) -> [u32; 32] {
    let mut x = *key;
    let mut z = [0u8; 16];
    let mut k = [0u32; 32];
    for half in 0..2 {
        let o = 16 * half;
        z_from_x(&x, &mut z);
        k[o] = q(&z, 0x8, 0x9, 0x7, 0x6) ^ e(5, &z, 0x2);
        k[o + 1] = q(&z, 0xA, 0xB, 0x5, 0x4) ^ e(6, &z, 0x6);
        k[o + 2] = q(&z, 0xC, 0xD, 0x3, 0x2) ^ e(7, &z, 0x9);
        k[o + 3] = q(&z, 0xE, 0xF, 0x1, 0x0) ^ e(8, &z, 0xC);
        x_from_z(&z, &mut x);
        k[o + 4] = q(&x, 0x3, 0x2, 0xC, 0xD) ^ e(5, &x, 0x8);
        k[o + 5] = q(&x, 0x1, 0x0, 0xE, 0xF) ^ e(6, &x, 0xD);
        k[o + 6] = q(&x, 0x7, 0x6, 0x8, 0x9) ^ e(7, &x, 0x3);
        k[o + 7] = q(&x, 0x5, 0x4, 0xA, 0xB) ^ e(8, &x, 0x7);
        z_from_x(&x, &mut z);
        k[o + 8] = q(&z, 0x3, 0x2, 0xC, 0xD) ^ e(5, &z, 0x9);
        k[o + 9] = q(&z, 0x1, 0x0, 0xE, 0xF) ^ e(6, &z, 0xC);
        k[o + 10] = q(&z, 0x7, 0x6, 0x8, 0x9) ^ e(7, &z, 0x2);
        k[o + 11] = q(&z, 0x5, 0x4, 0xA, 0xB) ^ e(8, &z, 0x6);
        x_from_z(&z, &mut x);
        k[o + 12] = q(&x, 0x8, 0x9, 0x7, 0x6) ^ e(5, &x, 0x3);
        k[o + 13] = q(&x, 0xA, 0xB, 0x5, 0x4) ^ e(6, &x, 0x7);
        k[o + 14] = q(&x, 0xC, 0xD, 0x3, 0x2) ^ e(7, &x, 0x8);
        k[o + 15] = q(&x, 0xE, 0xF, 0x1, 0x0) ^ e(8, &x, 0xD);
    }
    x.zeroize();
    z.zeroize();
    k
}

impl Cast5 {
    /// `key` is 5 to 16 bytes (checked by the registry); shorter keys are
    /// padded with zeros to 128 bits.
    pub(super) fn new(key: &[u8]) -> Self {
        let mut padded = [0u8; 16];
        padded[..key.len()].copy_from_slice(key);
        let mut k = schedule(&padded);
        padded.zeroize();
        let c = Cast5 {
            km: k[..16].try_into().unwrap(),
            kr: core::array::from_fn(|i| k[16 + i] & 31),
            rounds: if key.len() <= 10 { 12 } else { 16 },
        };
        k.zeroize();
        c
    }

    /// Round `i` (0-based) of the three round function types.
    #[inline(always)]
    fn f(&self, i: usize, d: u32) -> u32 {
        let s = |t: usize, x: u32, shift: u32| S[t][((x >> shift) & 0xff) as usize];
        match i % 3 {
            0 => {
                let x = self.km[i].wrapping_add(d).rotate_left(self.kr[i]);
                ((s(0, x, 24) ^ s(1, x, 16)).wrapping_sub(s(2, x, 8))).wrapping_add(s(3, x, 0))
            }
            1 => {
                let x = (self.km[i] ^ d).rotate_left(self.kr[i]);
                (s(0, x, 24)
                    .wrapping_sub(s(1, x, 16))
                    .wrapping_add(s(2, x, 8)))
                    ^ s(3, x, 0)
            }
            _ => {
                let x = self.km[i].wrapping_sub(d).rotate_left(self.kr[i]);
                ((s(0, x, 24).wrapping_add(s(1, x, 16))) ^ s(2, x, 8)).wrapping_sub(s(3, x, 0))
            }
        }
    }

    #[inline(always)]
    fn run_n<const N: usize>(&self, data: &mut [u8], enc: bool) {
        let word = |b: usize, i: usize| {
            u32::from_be_bytes(data[8 * b + 4 * i..8 * b + 4 * i + 4].try_into().unwrap())
        };
        let mut l: [u32; N] = core::array::from_fn(|b| word(b, 0));
        let mut r: [u32; N] = core::array::from_fn(|b| word(b, 1));
        for step in 0..self.rounds {
            let i = if enc { step } else { self.rounds - 1 - step };
            for b in 0..N {
                let t = l[b] ^ self.f(i, r[b]);
                l[b] = r[b];
                r[b] = t;
            }
        }
        for b in 0..N {
            data[8 * b..8 * b + 4].copy_from_slice(&r[b].to_be_bytes());
            data[8 * b + 4..8 * b + 8].copy_from_slice(&l[b].to_be_bytes());
        }
    }

    fn run(&self, data: &mut [u8], enc: bool) {
        super::interleaved(
            data,
            8 * WIDE,
            8,
            |c| self.run_n::<WIDE>(c, enc),
            |b| self.run_n::<1>(b, enc),
        );
    }
}

impl BlockCipher for Cast5 {
    fn block_size(&self) -> usize {
        8
    }
    fn encrypt_blocks(&self, data: &mut [u8]) {
        self.run(data, true);
    }
    fn decrypt_blocks(&self, data: &mut [u8]) {
        self.run(data, false);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_matches, hex};
    use super::*;

    /// RFC 2144 Appendix B.1: one block with 128-, 80- and 40-bit keys.
    #[test]
    fn rfc2144_known_answers() {
        let pt = hex("0123456789abcdef");
        for (key, ct) in [
            ("0123456712345678234567893456789a", "238b4fe5847e44b2"),
            ("01234567123456782345", "eb6a711a2c02271b"),
            ("0123456712", "7ac816d16e9b302e"),
        ] {
            let c = Cast5::new(&hex(key));
            let mut b = pt.clone();
            c.encrypt_blocks(&mut b);
            assert_eq!(b, hex(ct), "key {key}");
            c.decrypt_blocks(&mut b);
            assert_eq!(b, pt, "key {key}");
        }
    }

    #[test]
    fn matches_the_cast5_crate() {
        for klen in 5usize..=16 {
            let key: Vec<u8> = (0..klen).map(|i| (i * 89 + klen * 7) as u8).collect();
            let ours = Cast5::new(&key);
            let peer = super::super::adapter::keyed::<cast5::Cast5>(&key);
            for blocks in [1, WIDE - 1, WIDE, WIDE + 1, 3 * WIDE + 5] {
                let plain: Vec<u8> = (0..8 * blocks).map(|i| (i * 13 + klen) as u8).collect();
                assert_matches(
                    &ours,
                    &*peer,
                    &plain,
                    &format!("key {klen}, {blocks} blocks"),
                );
            }
        }
    }
}
