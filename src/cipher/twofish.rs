//! Table-driven Twofish (Schneier et al., 1998), as the kernel's
//! twofish_generic does it: the key-dependent S-boxes and the MDS multiply
//! are folded into four 256-entry tables at key setup, so a round is eight
//! table lookups. The `twofish` crate recomputes the S-boxes per block and
//! runs at ~1.4 MB/s; it remains the correctness peer in the tests.

use super::BlockCipher;
use zeroize::{Zeroize, Zeroizing};

/// The 4-bit permutation tables of q0 and q1 (spec, section 4.3.5).
const Q_T: [[[u8; 16]; 4]; 2] = [
    [
        [8, 1, 7, 13, 6, 15, 3, 2, 0, 11, 5, 9, 14, 12, 10, 4],
        [14, 12, 11, 8, 1, 2, 3, 5, 15, 4, 10, 6, 7, 0, 9, 13],
        [11, 10, 5, 14, 6, 13, 9, 0, 12, 8, 15, 3, 2, 4, 7, 1],
        [13, 7, 15, 4, 1, 2, 6, 14, 9, 11, 3, 0, 8, 5, 12, 10],
    ],
    [
        [2, 8, 11, 13, 15, 7, 6, 14, 3, 1, 9, 4, 0, 10, 12, 5],
        [1, 14, 2, 11, 4, 12, 3, 7, 6, 13, 10, 5, 15, 9, 0, 8],
        [4, 12, 7, 5, 1, 6, 9, 10, 0, 14, 13, 8, 2, 11, 3, 15],
        [11, 9, 5, 1, 12, 3, 13, 14, 6, 4, 7, 15, 2, 0, 8, 10],
    ],
];

const MDS: [[u8; 4]; 4] = [
    [0x01, 0xef, 0x5b, 0x5b],
    [0x5b, 0xef, 0xef, 0x01],
    [0xef, 0x5b, 0x01, 0xef],
    [0xef, 0x01, 0xef, 0x5b],
];

const RS: [[u8; 8]; 4] = [
    [0x01, 0xa4, 0x55, 0x87, 0x5a, 0x58, 0xdb, 0x9e],
    [0xa4, 0x56, 0x82, 0xf3, 0x1e, 0xc6, 0x68, 0xe5],
    [0x02, 0xa1, 0xfc, 0xc1, 0x47, 0xae, 0x3d, 0x19],
    [0xa4, 0x55, 0x87, 0x5a, 0x58, 0xdb, 0x9e, 0x03],
];

fn ror4(x: u8) -> u8 {
    ((x >> 1) | (x << 3)) & 15
}

fn q(which: usize, x: u8) -> u8 {
    let t = &Q_T[which];
    let (a0, b0) = (x >> 4, x & 15);
    let (a1, b1) = (a0 ^ b0, a0 ^ ror4(b0) ^ ((8 * a0) & 15));
    let (a2, b2) = (t[0][a1 as usize], t[1][b1 as usize]);
    let (a3, b3) = (a2 ^ b2, a2 ^ ror4(b2) ^ ((8 * a2) & 15));
    let (a4, b4) = (t[2][a3 as usize], t[3][b3 as usize]);
    (b4 << 4) | a4
}

/// Multiply in GF(2^8) modulo the given polynomial (low 8 bits).
fn gf_mul(mut a: u8, mut b: u8, poly: u8) -> u8 {
    let mut r = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            r ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= poly;
        }
        b >>= 1;
    }
    r
}

/// MDS column `col` times byte `y`, as a little-endian word.
fn mds_column(col: usize, y: u8) -> u32 {
    (0..4).fold(0u32, |w, row| {
        w | (u32::from(gf_mul(MDS[row][col], y, 0x69)) << (8 * row))
    })
}

/// The q-permutation chains of h() for byte lane `lane` and key bytes l[j]
/// (l[0] is applied last), for k = l.len() key words.
fn chain(lane: usize, mut y: u8, l: &[[u8; 4]]) -> u8 {
    // Which q each stage uses, per lane: stages for k=4, k>=3, then the two fixed.
    const Q4: [usize; 4] = [1, 0, 0, 1];
    const Q3: [usize; 4] = [1, 1, 0, 0];
    const QA: [usize; 4] = [0, 1, 0, 1];
    const QB: [usize; 4] = [0, 0, 1, 1];
    const QC: [usize; 4] = [1, 0, 1, 0];
    let k = l.len();
    if k == 4 {
        y = q(Q4[lane], y) ^ l[3][lane];
    }
    if k >= 3 {
        y = q(Q3[lane], y) ^ l[2][lane];
    }
    y = q(QA[lane], y) ^ l[1][lane];
    y = q(QB[lane], y) ^ l[0][lane];
    q(QC[lane], y)
}

fn h(x: u8, l: &[[u8; 4]]) -> u32 {
    (0..4).fold(0u32, |z, lane| z ^ mds_column(lane, chain(lane, x, l)))
}

pub(super) struct Twofish {
    k: [u32; 40],
    /// g() folded: g(X) = s[0][x0] ^ s[1][x1] ^ s[2][x2] ^ s[3][x3].
    s: Box<[[u32; 256]; 4]>,
}

impl Drop for Twofish {
    fn drop(&mut self) {
        self.k.zeroize();
        for t in self.s.iter_mut() {
            t.zeroize();
        }
    }
}

impl Twofish {
    /// Key lengths 16, 24 or 32 bytes (checked by the registry).
    pub(super) fn new(key: &[u8]) -> Self {
        let k = key.len() / 8;
        let words = |i: usize| -> [u8; 4] { key[4 * i..4 * i + 4].try_into().unwrap() };
        let me: Vec<[u8; 4]> = (0..k).map(|i| words(2 * i)).collect();
        let mo: Vec<[u8; 4]> = (0..k).map(|i| words(2 * i + 1)).collect();
        // S-box key words from the RS code, used in reverse order.
        let mut sv: Vec<[u8; 4]> = (0..k)
            .map(|i| {
                let m = &key[8 * i..8 * i + 8];
                let mut out = [0u8; 4];
                for (r, o) in out.iter_mut().enumerate() {
                    *o = (0..8).fold(0u8, |acc, c| acc ^ gf_mul(RS[r][c], m[c], 0x4d));
                }
                out
            })
            .collect();
        sv.reverse();
        let mut kk = [0u32; 40];
        for i in 0..20 {
            let a = h((2 * i) as u8, &me);
            let b = h((2 * i + 1) as u8, &mo).rotate_left(8);
            kk[2 * i] = a.wrapping_add(b);
            kk[2 * i + 1] = a.wrapping_add(b.wrapping_mul(2)).rotate_left(9);
        }
        let mut s = Box::new([[0u32; 256]; 4]);
        for lane in 0..4 {
            for x in 0..256 {
                s[lane][x] = mds_column(lane, chain(lane, x as u8, &sv));
            }
        }
        let mut z = Zeroizing::new(sv);
        z.iter_mut().for_each(|w| w.zeroize());
        Twofish { k: kk, s }
    }

    #[inline(always)]
    fn g(&self, x: u32) -> u32 {
        let b = x.to_le_bytes();
        self.s[0][b[0] as usize]
            ^ self.s[1][b[1] as usize]
            ^ self.s[2][b[2] as usize]
            ^ self.s[3][b[3] as usize]
    }

    /// Encrypt N blocks side by side: one block's rounds are a serial chain
    /// of table lookups, so interleaving independent blocks fills the core.
    #[inline(always)]
    fn encrypt_n<const N: usize>(&self, data: &mut [u8]) {
        let k = &self.k;
        let w = |b: usize, i: usize| {
            u32::from_le_bytes(data[16 * b + 4 * i..16 * b + 4 * i + 4].try_into().unwrap())
        };
        let mut r0: [u32; N] = core::array::from_fn(|b| w(b, 0) ^ k[0]);
        let mut r1: [u32; N] = core::array::from_fn(|b| w(b, 1) ^ k[1]);
        let mut r2: [u32; N] = core::array::from_fn(|b| w(b, 2) ^ k[2]);
        let mut r3: [u32; N] = core::array::from_fn(|b| w(b, 3) ^ k[3]);
        for r in (0..16).step_by(2) {
            for b in 0..N {
                let t0 = self.g(r0[b]);
                let t1 = self.g(r1[b].rotate_left(8));
                r2[b] = (r2[b] ^ t0.wrapping_add(t1).wrapping_add(k[2 * r + 8])).rotate_right(1);
                r3[b] = r3[b].rotate_left(1)
                    ^ t0.wrapping_add(t1.wrapping_mul(2))
                        .wrapping_add(k[2 * r + 9]);
            }
            for b in 0..N {
                let t0 = self.g(r2[b]);
                let t1 = self.g(r3[b].rotate_left(8));
                r0[b] = (r0[b] ^ t0.wrapping_add(t1).wrapping_add(k[2 * r + 10])).rotate_right(1);
                r1[b] = r1[b].rotate_left(1)
                    ^ t0.wrapping_add(t1.wrapping_mul(2))
                        .wrapping_add(k[2 * r + 11]);
            }
        }
        for b in 0..N {
            let out = [r2[b] ^ k[4], r3[b] ^ k[5], r0[b] ^ k[6], r1[b] ^ k[7]];
            for (i, v) in out.iter().enumerate() {
                data[16 * b + 4 * i..16 * b + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
    }

    #[inline(always)]
    fn decrypt_n<const N: usize>(&self, data: &mut [u8]) {
        let k = &self.k;
        let w = |b: usize, i: usize| {
            u32::from_le_bytes(data[16 * b + 4 * i..16 * b + 4 * i + 4].try_into().unwrap())
        };
        let mut r2: [u32; N] = core::array::from_fn(|b| w(b, 0) ^ k[4]);
        let mut r3: [u32; N] = core::array::from_fn(|b| w(b, 1) ^ k[5]);
        let mut r0: [u32; N] = core::array::from_fn(|b| w(b, 2) ^ k[6]);
        let mut r1: [u32; N] = core::array::from_fn(|b| w(b, 3) ^ k[7]);
        for r in (0..16).step_by(2).rev() {
            for b in 0..N {
                let t0 = self.g(r2[b]);
                let t1 = self.g(r3[b].rotate_left(8));
                r0[b] = r0[b].rotate_left(1) ^ t0.wrapping_add(t1).wrapping_add(k[2 * r + 10]);
                r1[b] = (r1[b]
                    ^ t0.wrapping_add(t1.wrapping_mul(2))
                        .wrapping_add(k[2 * r + 11]))
                .rotate_right(1);
            }
            for b in 0..N {
                let t0 = self.g(r0[b]);
                let t1 = self.g(r1[b].rotate_left(8));
                r2[b] = r2[b].rotate_left(1) ^ t0.wrapping_add(t1).wrapping_add(k[2 * r + 8]);
                r3[b] = (r3[b]
                    ^ t0.wrapping_add(t1.wrapping_mul(2))
                        .wrapping_add(k[2 * r + 9]))
                .rotate_right(1);
            }
        }
        for b in 0..N {
            let out = [r0[b] ^ k[0], r1[b] ^ k[1], r2[b] ^ k[2], r3[b] ^ k[3]];
            for (i, v) in out.iter().enumerate() {
                data[16 * b + 4 * i..16 * b + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
    }
}

/// Blocks processed side by side (see `encrypt_n`).
const WIDE: usize = 4;

impl BlockCipher for Twofish {
    fn block_size(&self) -> usize {
        16
    }
    fn encrypt_blocks(&self, data: &mut [u8]) {
        super::interleaved(
            data,
            16 * WIDE,
            16,
            |c| self.encrypt_n::<WIDE>(c),
            |b| self.encrypt_n::<1>(b),
        );
    }
    fn decrypt_blocks(&self, data: &mut [u8]) {
        super::interleaved(
            data,
            16 * WIDE,
            16,
            |c| self.decrypt_n::<WIDE>(c),
            |b| self.decrypt_n::<1>(b),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cipher::{BlockCipherEncrypt, KeyInit};

    #[test]
    fn matches_the_twofish_crate_for_every_key_size() {
        for klen in [16usize, 24, 32] {
            for seed in 0u8..20 {
                let key: Vec<u8> = (0..klen)
                    .map(|i| (i as u8).wrapping_mul(37) ^ seed)
                    .collect();
                let mut block: Vec<u8> = (0..16)
                    .map(|i| (i as u8).wrapping_mul(11) ^ seed.rotate_left(3))
                    .collect();
                let ours = Twofish::new(&key);
                let theirs = twofish::Twofish::new_from_slice(&key).unwrap();
                let mut expect = cipher::array::Array::try_from(&block[..]).unwrap();
                theirs.encrypt_block(&mut expect);
                let plain = block.clone();
                ours.encrypt_blocks(&mut block);
                assert_eq!(block, expect.as_slice(), "key {klen} seed {seed}");
                ours.decrypt_blocks(&mut block);
                assert_eq!(block, plain);
            }
        }
    }

    /// Runs of blocks go through the interleaved path and its remainder.
    #[test]
    fn interleaved_blocks_match_the_crate_block_by_block() {
        let key: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(29) ^ 0x5a).collect();
        let ours = Twofish::new(&key);
        let theirs = twofish::Twofish::new_from_slice(&key).unwrap();
        for blocks in [1usize, WIDE - 1, WIDE, WIDE + 1, 3 * WIDE + 2] {
            let plain: Vec<u8> = (0..16 * blocks).map(|i| (i * 31 + blocks) as u8).collect();
            let mut data = plain.clone();
            ours.encrypt_blocks(&mut data);
            for (got, p) in data.chunks_exact(16).zip(plain.chunks_exact(16)) {
                let mut want = cipher::array::Array::try_from(p).unwrap();
                theirs.encrypt_block(&mut want);
                assert_eq!(got, want.as_slice(), "{blocks} blocks");
            }
            ours.decrypt_blocks(&mut data);
            assert_eq!(data, plain, "{blocks} blocks");
        }
    }
}
