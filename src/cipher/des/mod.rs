//! DES and triple DES (FIPS 46-3), 64 blocks at a time on AVX-512 (VBMI and
//! GFNI).
//!
//! The Feistel halves are kept in *expanded* form: each of the eight 6-bit
//! E-expansion chunks of a half in its own byte, one register per chunk, a
//! block per byte lane. E is a bit selection, so `E(L ^ f) = E(L) ^ E(f)`:
//! a round is then only table lookups. For S-box `i` and target chunk `j`,
//! a 64-entry byte table maps S-box input `i` straight to chunk `j` of
//! `E(P(S_i(x)))`; `vpermb` looks it up for 64 blocks in one instruction.
//! The initial and final permutations are bit transposes, which
//! `vgf2p8affineqb` does with the data as its matrix. Every table is computed
//! at compile time from the standard's tables below.
//!
//! Without those CPU features `table.rs` does the work: 32-bit SP tables
//! and four blocks interleaved. The `des` crate is the peer the tests
//! compare both against.

use super::{BlockCipher, Direction};
use crate::cpu::DesAvx512;

mod avx512;
mod table;
use zeroize::Zeroizing;

/// Initial permutation: output bit n (1-based, MSB first) is input bit IP[n-1].
const IP: [u8; 64] = [
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, //
    62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8, //
    57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, //
    61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
];

/// The permutation P applied to the S-box outputs.
const P: [u8; 32] = [
    16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, //
    2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
];

/// Permuted choice 1 (key bits into C and D).
const PC1: [u8; 56] = [
    57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, //
    10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36, //
    63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, //
    14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
];

/// Permuted choice 2 (C and D into a 48-bit round key).
const PC2: [u8; 48] = [
    14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, //
    23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, //
    41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48, //
    44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];

const SHIFTS: [u8; 16] = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];

/// S-boxes, row (first and last input bit) by column (middle four bits).
const S: [[[u8; 16]; 4]; 8] = [
    [
        [14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7],
        [0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8],
        [4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0],
        [15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13],
    ],
    [
        [15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10],
        [3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5],
        [0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15],
        [13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9],
    ],
    [
        [10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8],
        [13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1],
        [13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7],
        [1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12],
    ],
    [
        [7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15],
        [13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9],
        [10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4],
        [3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14],
    ],
    [
        [2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9],
        [14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6],
        [4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14],
        [11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3],
    ],
    [
        [12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11],
        [10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8],
        [9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6],
        [4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13],
    ],
    [
        [4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1],
        [13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6],
        [1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2],
        [6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12],
    ],
    [
        [13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7],
        [1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2],
        [7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8],
        [2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11],
    ],
];

// Internal conventions. A half-block is a u32 whose bit k (LSB = 0) is DES
// bit k+1 of that half. Chunk j of its expansion holds, in bits t = 0..5,
// half bits (4j - 1 + t) mod 32: E's six bits in order, so bit t of chunk
// j is bit 6j + t of the 48-bit round key too.

/// Bit `n` (1-based) of a 32-bit half that chunk `j`, bit `t` reads.
const fn chunk_source(j: usize, t: usize) -> usize {
    (4 * j + t + 31) % 32 + 1
}

/// S-box `i` on a 6-bit chunk value (bit t = S-box input bit t+1).
const fn sbox(i: usize, v: usize) -> u8 {
    let b = [
        v & 1,
        (v >> 1) & 1,
        (v >> 2) & 1,
        (v >> 3) & 1,
        (v >> 4) & 1,
        (v >> 5) & 1,
    ];
    let row = b[0] * 2 + b[5];
    let col = b[1] * 8 + b[2] * 4 + b[3] * 2 + b[4];
    S[i][row][col]
}

/// `P(S_i(v))` as a half, for S-box `i` and chunk value `v`.
const fn sp_word(i: usize, v: usize) -> u32 {
    let s = sbox(i, v);
    let mut w = 0u32;
    let mut k = 1;
    while k <= 32 {
        // f bit k (1-based) = pre-P bit P[k-1]; S-box i fills pre-P bits
        // 4i+1..4i+4, most significant output bit first.
        let src = P[k - 1] as usize;
        if src > 4 * i && src <= 4 * i + 4 && (s >> (3 - (src - 4 * i - 1))) & 1 == 1 {
            w |= 1 << (k - 1);
        }
        k += 1;
    }
    w
}

/// Chunk `j` of E(P(S_i(v) in its place)), for every chunk value v.
const fn sp_table(i: usize, j: usize) -> [u8; 64] {
    let mut table = [0u8; 64];
    let mut v = 0;
    while v < 64 {
        let f = sp_word(i, v);
        let mut c = 0u8;
        let mut t = 0;
        while t < 6 {
            if (f >> (chunk_source(j, t) - 1)) & 1 == 1 {
                c |= 1 << t;
            }
            t += 1;
        }
        table[v] = c;
        v += 1;
    }
    table
}

#[repr(align(64))]
#[derive(Clone, Copy)]
struct Line([u8; 64]);

const fn all_sp_tables() -> [[Line; 8]; 8] {
    let mut t = [[Line([0; 64]); 8]; 8];
    let mut p = 0;
    while p < 64 {
        t[p / 8][p % 8] = Line(sp_table(p / 8, p % 8));
        p += 1;
    }
    t
}

/// Which (S-box, chunk) tables are not all zero: only those are looked up.
const fn used_tables() -> [[bool; 8]; 8] {
    let mut used = [[false; 8]; 8];
    let mut p = 0;
    while p < 64 {
        let t = sp_table(p / 8, p % 8);
        let mut v = 0;
        while v < 64 {
            used[p / 8][p % 8] |= t[v] != 0;
            v += 1;
        }
        p += 1;
    }
    used
}

static SP_TABLES: [[Line; 8]; 8] = all_sp_tables();
const SP_USED: [[bool; 8]; 8] = used_tables();

/// Round keys of one DES key as chunk bytes, in encryption order.
type Schedule = [[u8; 8]; 16];

fn schedule(key: &[u8]) -> Zeroizing<Schedule> {
    let key_bit = |n: usize| (key[(n - 1) / 8] >> (7 - (n - 1) % 8)) & 1;
    let mut cd = Zeroizing::new([0u8; 56]);
    for (m, b) in cd.iter_mut().enumerate() {
        *b = key_bit(PC1[m] as usize);
    }
    let mut keys = Zeroizing::new([[0u8; 8]; 16]);
    for (r, k) in keys.iter_mut().enumerate() {
        for _ in 0..SHIFTS[r] {
            cd[..28].rotate_left(1);
            cd[28..].rotate_left(1);
        }
        for (q, &src) in PC2.iter().enumerate() {
            k[q / 6] |= cd[src as usize - 1] << (q % 6);
        }
    }
    keys
}

pub(super) struct Des {
    /// One schedule per DES pass, already in the order and direction each
    /// pass runs (three for EDE).
    enc: Zeroizing<Vec<Schedule>>,
    dec: Zeroizing<Vec<Schedule>>,
    imp: Imp,
}

/// Which implementation runs over the schedules above: the AVX-512 backend
/// (with its token) for eight blocks and more, the tables for the rest (a
/// lone CBC block through a 64-block group cost 64 blocks' work).
struct Imp {
    avx512: Option<DesAvx512>,
    /// The schedules packed as the tables' round function reads them.
    packed_enc: Zeroizing<Vec<[table::Packed; 16]>>,
    packed_dec: Zeroizing<Vec<[table::Packed; 16]>>,
}

/// Below this many bytes the tables beat a 64-block AVX-512 group.
const SMALL: usize = 8 * 8;

impl Des {
    /// `key` is 8 bytes (DES) or 24 bytes (EDE3), checked by the registry.
    pub(super) fn new(key: &[u8]) -> Self {
        Self::with(key, DesAvx512::get())
    }

    /// The table path (the tests force it on AVX-512 machines).
    #[cfg(test)]
    fn portable(key: &[u8]) -> Self {
        Self::with(key, None)
    }

    fn with(key: &[u8], avx512: Option<DesAvx512>) -> Self {
        let ks: Vec<_> = key.chunks_exact(8).map(schedule).collect();
        let rev = |s: &Schedule| {
            let mut r = *s;
            r.reverse();
            r
        };
        let (enc, dec) = if ks.len() == 1 {
            (vec![*ks[0]], vec![rev(&ks[0])])
        } else {
            // EDE: E_k1, D_k2, E_k3; decryption D_k3, E_k2, D_k1.
            (
                vec![*ks[0], rev(&ks[1]), *ks[2]],
                vec![rev(&ks[2]), *ks[1], rev(&ks[0])],
            )
        };
        let imp = Imp {
            avx512,
            packed_enc: table::pack_passes(&enc),
            packed_dec: table::pack_passes(&dec),
        };
        Des {
            enc: Zeroizing::new(enc),
            dec: Zeroizing::new(dec),
            imp,
        }
    }

    fn run(&self, data: &mut [u8], dir: Direction) {
        let keys = match dir {
            Direction::Encrypt => &self.enc,
            Direction::Decrypt => &self.dec,
        };
        match self.imp.avx512 {
            Some(t) if data.len() >= SMALL => {
                super::in_groups::<{ avx512::GROUP }>(data, |g| avx512::run64(t, keys, g))
            }
            _ => match dir {
                Direction::Encrypt => table::run(&self.imp.packed_enc, data),
                Direction::Decrypt => table::run(&self.imp.packed_dec, data),
            },
        }
    }
}

impl BlockCipher for Des {
    fn block_size(&self) -> usize {
        8
    }
    fn encrypt_blocks(&self, data: &mut [u8]) {
        self.run(data, Direction::Encrypt);
    }
    fn decrypt_blocks(&self, data: &mut [u8]) {
        self.run(data, Direction::Decrypt);
    }
}

/// `vgf2p8affineqb` with the data as matrix: output byte k, bit b is bit
/// `sel[k]` of input byte `7 - b`. IP and FP are such transposes once the
/// input bytes are put in order; these give (input byte order, selector
/// bit per output byte) for a permutation `src` from output bit positions
/// (byte k, LSB-first bit b) to input bit positions (byte, bit). The tests
/// check the result against a plain bit-by-bit permutation.
const fn transpose_plan(fp: bool) -> ([u8; 8], [u8; 8]) {
    let mut order = [0u8; 8];
    let mut sel = [0u8; 8];
    let mut k = 0;
    while k < 8 {
        let mut b = 0;
        while b < 8 {
            let (in_byte, in_bit) = if fp {
                // Output: standard block, DES bit p = 8k + (7 - b) + 1.
                // Source: pre-output bit n = FP[p] = position of p in IP,
                // stored LSB-first.
                let p = 8 * k + (7 - b) + 1;
                let mut n = 0;
                while IP[n] as usize != p {
                    n += 1;
                }
                (n / 8, n % 8)
            } else {
                // Output: halves LSB-first, DES bit n = 8k + b + 1, taken
                // from standard block bit IP[n-1] (MSB-first).
                let src = IP[8 * k + b] as usize - 1;
                (src / 8, 7 - src % 8)
            };
            order[7 - b] = in_byte as u8;
            sel[k] = in_bit as u8;
            b += 1;
        }
        k += 1;
    }
    (order, sel)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_matches, rand_bytes};
    use super::*;

    /// Standard bit numbering: bit 1 is the MSB of byte 0.
    fn permute(block: u64, table: &[u8]) -> u64 {
        table.iter().fold(0, |acc, &src| {
            (acc << 1) | ((block >> (64 - src as u32)) & 1)
        })
    }

    /// The transposes the SIMD code does, applied bit by bit, equal IP and FP.
    #[test]
    fn transpose_plans_are_ip_and_fp() {
        let apply = |(order, sel): ([u8; 8], [u8; 8]), x: [u8; 8]| {
            let mut out = [0u8; 8];
            for k in 0..8 {
                for b in 0..8 {
                    out[k] |= ((x[order[7 - b] as usize] >> sel[k]) & 1) << b;
                }
            }
            out
        };
        let mut fp = [0u8; 64];
        for (n, &p) in IP.iter().enumerate() {
            fp[p as usize - 1] = n as u8 + 1;
        }
        let mut seed = 3;
        for _ in 0..64 {
            let mut x = [0u8; 8];
            rand_bytes(&mut seed, &mut x);
            let block = u64::from_be_bytes(x);
            // IP, read back in the halves' LSB-first convention.
            let ip = permute(block, &IP);
            let got = u64::from_le_bytes(apply(transpose_plan(false), x));
            assert_eq!(got, ip.reverse_bits(), "IP");
            // FP takes the LSB-first pre-output and gives a standard block.
            let pre = block.reverse_bits().to_le_bytes();
            let got = u64::from_be_bytes(apply(transpose_plan(true), pre));
            assert_eq!(got, permute(block, &fp), "FP");
        }
    }

    /// DES and EDE3 against the crate, several lengths, both paths.
    #[test]
    fn matches_the_des_crate() {
        if DesAvx512::get().is_none() {
            println!(
                "des: no AVX-512 VBMI/GFNI here (or DMCH_CPU caps it); comparing the tables only"
            );
        }
        let mut seed = 5;
        for klen in [8, 24] {
            for blocks in [1, 7, 16, 63, 64, 65, 200, 512] {
                let mut key = vec![0u8; klen];
                rand_bytes(&mut seed, &mut key);
                let mut data = vec![0u8; blocks * 8];
                rand_bytes(&mut seed, &mut data);
                let peer: Box<dyn BlockCipher> = if klen == 8 {
                    super::super::adapter::keyed::<des::Des>(&key)
                } else {
                    super::super::adapter::keyed::<des::TdesEde3>(&key)
                };
                for ours in [Des::new(&key), Des::portable(&key)] {
                    assert_matches(
                        &ours,
                        &*peer,
                        &data,
                        &format!("key {klen}, {blocks} blocks"),
                    );
                }
            }
        }
    }

    /// FIPS 81 / NBS example: key 0123456789abcdef, "Now is t".
    #[test]
    fn known_answer() {
        let key = 0x0123456789abcdefu64.to_be_bytes();
        let plain = *b"Now is t";
        for des in [Des::new(&key), Des::portable(&key)] {
            let mut b = plain;
            des.encrypt_blocks(&mut b);
            assert_eq!(u64::from_be_bytes(b), 0x3fa40e8a984d4815);
        }
    }
}
