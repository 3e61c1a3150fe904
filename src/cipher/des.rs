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
//! Without those CPU features the `des` crate does the work; it is also the
//! peer the tests compare this implementation against.

use super::{BlockCipher, Direction};
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

/// Chunk `j` of E(P(S_i(v) in its place)), for every chunk value v.
const fn sp_table(i: usize, j: usize) -> [u8; 64] {
    let mut table = [0u8; 64];
    let mut v = 0;
    while v < 64 {
        let s = sbox(i, v);
        // f bit k (1-based) = pre-P bit P[k-1]; S-box i fills pre-P bits
        // 4i+1..4i+4, most significant output bit first.
        let mut f = [false; 33];
        let mut k = 1;
        while k <= 32 {
            let src = P[k - 1] as usize;
            if src > 4 * i && src <= 4 * i + 4 {
                f[k] = (s >> (3 - (src - 4 * i - 1))) & 1 == 1;
            }
            k += 1;
        }
        let mut c = 0u8;
        let mut t = 0;
        while t < 6 {
            if f[chunk_source(j, t)] {
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
    /// The crate, for CPUs without AVX-512 VBMI and GFNI.
    portable: Option<Box<dyn BlockCipher>>,
}

impl Des {
    /// `key` is 8 bytes (DES) or 24 bytes (EDE3), checked by the registry.
    pub(super) fn new(key: &[u8]) -> Self {
        if simd::available() {
            Self::with(key, None)
        } else {
            Self::portable(key)
        }
    }

    fn portable(key: &[u8]) -> Self {
        let crate_impl = if key.len() == 8 {
            super::adapter::keyed::<des::Des>(key)
        } else {
            super::adapter::keyed::<des::TdesEde3>(key)
        };
        Self::with(key, Some(crate_impl))
    }

    fn with(key: &[u8], portable: Option<Box<dyn BlockCipher>>) -> Self {
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
        Des {
            enc: Zeroizing::new(enc),
            dec: Zeroizing::new(dec),
            portable,
        }
    }

    fn run(&self, data: &mut [u8], dir: Direction) {
        if let Some(p) = &self.portable {
            return p.crypt_blocks(data, dir);
        }
        let enc = dir.is_encrypt();
        let keys = if enc { &self.enc } else { &self.dec };
        // SAFETY: `portable` is None only when simd::available().
        #[cfg(target_arch = "x86_64")]
        super::in_groups::<{ simd::GROUP }>(data, |g| unsafe { simd::run64(keys, g) });
        #[cfg(not(target_arch = "x86_64"))]
        let _ = keys;
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

#[cfg(not(target_arch = "x86_64"))]
mod simd {
    pub(super) fn available() -> bool {
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{SP_TABLES, SP_USED, Schedule, transpose_plan};
    use core::arch::x86_64::*;

    /// Bytes of 64 blocks.
    pub(super) const GROUP: usize = 512;

    pub(super) fn available() -> bool {
        crate::cpu::simd_for("des")
    }

    type Regs = [__m512i; 8];

    /// A qword constant repeated in all eight lanes, from its bytes.
    #[inline(always)]
    unsafe fn qword(bytes: [u8; 8]) -> __m512i {
        unsafe { _mm512_set1_epi64(i64::from_le_bytes(bytes)) }
    }

    /// 8x8 transpose of qwords across eight registers: out[i] lane q =
    /// in[q] lane i. Its own inverse.
    #[inline(always)]
    unsafe fn transpose_qwords(x: &mut Regs) {
        unsafe {
            let lo = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
            let hi = _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4);
            let mut a = [_mm512_setzero_si512(); 8];
            for p in 0..4 {
                a[2 * p] = _mm512_permutex2var_epi64(x[2 * p], lo, x[2 * p + 1]);
                a[2 * p + 1] = _mm512_permutex2var_epi64(x[2 * p], hi, x[2 * p + 1]);
            }
            // a[2p] = (i=0..3) x (reg 2p, 2p+1); a[2p+1] = i=4..7.
            let lo = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);
            let hi = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4);
            let mut b = [_mm512_setzero_si512(); 8];
            for h in 0..2 {
                for p in 0..2 {
                    let (u, v) = (a[4 * p + h], a[4 * p + 2 + h]);
                    b[4 * p + 2 * h] = _mm512_permutex2var_epi64(u, lo, v);
                    b[4 * p + 2 * h + 1] = _mm512_permutex2var_epi64(u, hi, v);
                }
            }
            // b[4p + m] = i in {2m, 2m+1} x regs 4p..4p+3.
            let lo = _mm512_set_epi64(11, 10, 9, 8, 3, 2, 1, 0);
            let hi = _mm512_set_epi64(15, 14, 13, 12, 7, 6, 5, 4);
            for m in 0..4 {
                x[2 * m] = _mm512_permutex2var_epi64(b[m], lo, b[4 + m]);
                x[2 * m + 1] = _mm512_permutex2var_epi64(b[m], hi, b[4 + m]);
            }
        }
    }

    /// Byte m of lane i <-> byte i of lane m, inside each register.
    #[inline(always)]
    unsafe fn transpose_bytes(x: &mut Regs) {
        unsafe {
            let mut idx = [0u8; 64];
            for (n, b) in idx.iter_mut().enumerate() {
                *b = ((n % 8) * 8 + n / 8) as u8;
            }
            let idx = _mm512_loadu_si512(idx.as_ptr() as *const __m512i);
            for v in x.iter_mut() {
                *v = _mm512_permutexvar_epi8(idx, *v);
            }
        }
    }

    /// Blocks (one per lane) -> expanded halves (chunk j of 64 blocks per
    /// register).
    #[inline(always)]
    unsafe fn expand(blocks: &Regs) -> (Regs, Regs) {
        unsafe {
            let (order, sel) = const { transpose_plan(false) };
            let order_idx = byte_order(order);
            let sel = qword(sel.map(|s| 1u8 << s));
            // Chunk j starts at half bit 4j - 1 (mod 32); the half is
            // duplicated in its qword so the window wraps.
            let windows = qword([31, 3, 7, 11, 15, 19, 23, 27]);
            let mut l = [_mm512_setzero_si512(); 8];
            let mut r = [_mm512_setzero_si512(); 8];
            for q in 0..8 {
                let x = _mm512_permutexvar_epi8(order_idx, blocks[q]);
                let halves = _mm512_gf2p8affine_epi64_epi8::<0>(sel, x);
                let ll = _mm512_shuffle_epi32::<0b10_10_00_00>(halves);
                let rr = _mm512_shuffle_epi32::<0b11_11_01_01>(halves);
                l[q] = _mm512_multishift_epi64_epi8(windows, ll);
                r[q] = _mm512_multishift_epi64_epi8(windows, rr);
            }
            for h in [&mut l, &mut r] {
                transpose_bytes(h);
                transpose_qwords(h);
            }
            (l, r)
        }
    }

    /// A vpermb index applying a byte order inside every qword.
    #[inline(always)]
    unsafe fn byte_order(order: [u8; 8]) -> __m512i {
        unsafe {
            let mut idx = [0u8; 64];
            for (n, b) in idx.iter_mut().enumerate() {
                *b = (n / 8 * 8) as u8 + order[n % 8];
            }
            _mm512_loadu_si512(idx.as_ptr() as *const __m512i)
        }
    }

    /// Expanded pre-output halves (first, second) -> blocks, through FP.
    #[inline(always)]
    unsafe fn contract(mut first: Regs, mut second: Regs) -> Regs {
        unsafe {
            for h in [&mut first, &mut second] {
                transpose_qwords(h);
                transpose_bytes(h);
            }
            let (order, sel) = const { transpose_plan(true) };
            let sel = qword(sel.map(|s| 1u8 << s));
            // Pre-output byte n is the first half's byte n (n < 4), else the
            // second half's byte n - 4;
            // after nibble packing, half byte k sits at even byte 2k.
            let mut idx = [0u8; 64];
            for (n, b) in idx.iter_mut().enumerate() {
                let src = order[n % 8] as usize;
                let base = n / 8 * 8;
                *b = if src < 4 {
                    (base + 2 * src) as u8
                } else {
                    (64 + base + 2 * (src - 4)) as u8
                };
            }
            let idx = _mm512_loadu_si512(idx.as_ptr() as *const __m512i);
            let nib = _mm512_set1_epi8(0x0f);
            let pair = _mm512_set1_epi16(0x1001);
            let mut out = [_mm512_setzero_si512(); 8];
            for q in 0..8 {
                // Chunk j bits 1..4 are half bits 4j..4j+3.
                let pack = |x: __m512i| {
                    let n = _mm512_and_si512(_mm512_srli_epi64::<1>(x), nib);
                    _mm512_maddubs_epi16(n, pair)
                };
                let pre = _mm512_permutex2var_epi8(pack(first[q]), idx, pack(second[q]));
                out[q] = _mm512_gf2p8affine_epi64_epi8::<0>(sel, pre);
            }
            out
        }
    }

    /// Sixteen rounds with one key schedule; leaves (L16, R16).
    #[inline(always)]
    unsafe fn pass(l: &mut Regs, r: &mut Regs, keys: &Schedule) {
        unsafe {
            for k in keys {
                let mut idx = [_mm512_setzero_si512(); 8];
                for j in 0..8 {
                    idx[j] = _mm512_xor_si512(r[j], _mm512_set1_epi8(k[j] as i8));
                }
                // Unrolled with literal indices so the halves stay in
                // registers; unused tables vanish at compile time.
                macro_rules! lookup {
                    ($i:literal, $j:literal) => {
                        if const { SP_USED[$i][$j] } {
                            let t =
                                _mm512_load_si512(SP_TABLES[$i][$j].0.as_ptr() as *const __m512i);
                            l[$j] = _mm512_xor_si512(l[$j], _mm512_permutexvar_epi8(idx[$i], t));
                        }
                    };
                }
                macro_rules! sbox {
                    ($i:literal) => {
                        lookup!($i, 0);
                        lookup!($i, 1);
                        lookup!($i, 2);
                        lookup!($i, 3);
                        lookup!($i, 4);
                        lookup!($i, 5);
                        lookup!($i, 6);
                        lookup!($i, 7);
                    };
                }
                sbox!(0);
                sbox!(1);
                sbox!(2);
                sbox!(3);
                sbox!(4);
                sbox!(5);
                sbox!(6);
                sbox!(7);
                core::mem::swap(l, r);
            }
        }
    }

    /// Run 64 blocks through the passes in `keys` (1 for DES, 3 for EDE).
    ///
    /// # Safety
    /// The CPU must have the features [`available`] checks.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,gfni")]
    pub(super) unsafe fn run64(keys: &[Schedule], data: &mut [u8; GROUP]) {
        unsafe {
            let p = data.as_mut_ptr() as *mut __m512i;
            let mut blocks = [_mm512_setzero_si512(); 8];
            for (q, b) in blocks.iter_mut().enumerate() {
                *b = _mm512_loadu_si512(p.add(q));
            }
            let (mut l, mut r) = expand(&blocks);
            for k in keys {
                pass(&mut l, &mut r, k);
                // Pre-output is R16 || L16. Between passes FP and IP cancel,
                // so that is the next pass's (L0, R0).
                core::mem::swap(&mut l, &mut r);
            }
            let out = contract(l, r);
            for (q, b) in out.iter().enumerate() {
                _mm512_storeu_si512(p.add(q), *b);
            }
        }
    }
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
        if !simd::available() {
            eprintln!("des: no AVX-512 VBMI/GFNI on this CPU; comparing the crate path only");
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
        let mut b = *b"Now is t";
        let des = Des::new(&key);
        des.encrypt_blocks(&mut b);
        assert_eq!(u64::from_be_bytes(b), 0x3fa40e8a984d4815);
    }
}
