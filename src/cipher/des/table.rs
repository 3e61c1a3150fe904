//! DES on any CPU: a round is eight lookups of 32-bit tables that hold
//! `P(S_i(x))` for each S-box input `x` (computed at compile time from the
//! standard's tables in `mod.rs`). E is two rotations of the half: one
//! puts the even 6-bit chunks at the bottom of its four bytes, the other
//! the odd ones, so after one key xor each (the round key's chunks packed
//! the same way) every lookup index is a byte of a register and the tables
//! are 256 entries ignoring the byte's top two bits. Four blocks
//! interleaved so one block's loads hide another's latency; IP and FP as
//! byte-indexed tables. Halves use the conventions of `mod.rs`: bit k
//! (LSB = 0) of a half is DES bit k+1.

use super::{IP, Schedule, sp_word};
use zeroize::Zeroizing;

/// Blocks processed side by side.
const WIDE: usize = 4;

/// `SP[j][b] = P(S_j(b & 63))`: indexed by a whole byte.
const fn sp_words() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut p = 0;
    while p < 8 * 256 {
        t[p / 256][p % 256] = sp_word(p / 256, p % 64);
        p += 1;
    }
    t
}

static SP: [[u32; 256]; 8] = sp_words();

/// A 64-bit bit permutation as eight byte-indexed tables: `out = OR of
/// t[b][in byte b]`. `src(n)` gives, for output bit n (1-based, MSB first),
/// the input bit (1-based, MSB first) it takes.
const fn byte_tables(fp: bool) -> [[u64; 256]; 8] {
    let mut t = [[0u64; 256]; 8];
    let mut n = 1;
    while n <= 64 {
        let s = if fp {
            // FP = IP^-1: output bit p comes from the input bit n with IP[n-1] = p.
            let mut m = 0;
            while IP[m] as usize != n {
                m += 1;
            }
            m + 1
        } else {
            IP[n - 1] as usize
        };
        let (byte, bit) = ((s - 1) / 8, 7 - (s - 1) % 8);
        let mut v = 0;
        while v < 256 {
            if (v >> bit) & 1 == 1 {
                t[byte][v] |= 1 << (64 - n);
            }
            v += 1;
        }
        n += 1;
    }
    t
}

static IP_T: [[u64; 256]; 8] = byte_tables(false);
static FP_T: [[u64; 256]; 8] = byte_tables(true);

#[inline(always)]
fn permute(t: &[[u64; 256]; 8], x: u64) -> u64 {
    let b = x.to_be_bytes();
    let mut out = 0;
    for (k, table) in t.iter().enumerate() {
        out |= table[b[k] as usize];
    }
    out
}

/// A round key's chunks packed as the round function reads them: even
/// chunks in the bytes of the first word, odd ones in the second.
pub(super) type Packed = [u32; 2];

fn pack(k: &[u8; 8]) -> Packed {
    let word = |o: usize| (0..4).fold(0u32, |w, b| w | (k[2 * b + o] as u32) << (8 * b));
    [word(0), word(1)]
}

/// The round function. Chunk j of E(r) is the half rotated right by
/// 4j - 1 (mod 32), six bits: so chunk 2b is byte b of r rotated left by
/// one, chunk 2b + 1 byte b of r rotated right by three.
#[inline(always)]
fn f(r: u32, k: &Packed) -> u32 {
    let even = r.rotate_left(1) ^ k[0];
    let odd = r.rotate_right(3) ^ k[1];
    let (e, o) = (even.to_le_bytes(), odd.to_le_bytes());
    let mut out = 0;
    for b in 0..4 {
        out ^= SP[2 * b][e[b] as usize] ^ SP[2 * b + 1][o[b] as usize];
    }
    out
}

#[inline(always)]
fn run_n<const N: usize>(passes: &[[Packed; 16]], data: &mut [u8]) {
    let mut l = [0u32; N];
    let mut r = [0u32; N];
    for b in 0..N {
        let x = permute(
            &IP_T,
            u64::from_be_bytes(data[8 * b..8 * b + 8].try_into().unwrap()),
        );
        l[b] = ((x >> 32) as u32).reverse_bits();
        r[b] = (x as u32).reverse_bits();
    }
    for keys in passes {
        for k in keys {
            for b in 0..N {
                let t = l[b] ^ f(r[b], k);
                l[b] = r[b];
                r[b] = t;
            }
        }
        // The last round does not swap; the next pass's IP would undo the
        // FP between passes, so neither is done.
        core::mem::swap(&mut l, &mut r);
    }
    for b in 0..N {
        let pre = ((l[b].reverse_bits() as u64) << 32) | r[b].reverse_bits() as u64;
        data[8 * b..8 * b + 8].copy_from_slice(&permute(&FP_T, pre).to_be_bytes());
    }
}

/// Every whole block of `data` through `passes` (one schedule per DES pass,
/// in order and direction).
pub(super) fn run(passes: &[[Packed; 16]], data: &mut [u8]) {
    super::super::interleaved(
        data,
        8 * WIDE,
        8,
        |c| run_n::<WIDE>(passes, c),
        |b| run_n::<1>(passes, b),
    );
}

/// Schedules packed for `run`, once per key.
pub(super) fn pack_passes(passes: &[Schedule]) -> Zeroizing<Vec<[Packed; 16]>> {
    Zeroizing::new(passes.iter().map(|s| s.map(|k| pack(&k))).collect())
}
