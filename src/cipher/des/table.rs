//! DES on any CPU: a round is eight lookups of 32-bit tables that hold
//! `P(S_i(x))` for each S-box input `x` (computed at compile time from the
//! standard's tables in `mod.rs`), the E expansion being rotations of the
//! half; four blocks interleaved so one block's loads hide another's
//! latency; IP and FP as byte-indexed tables. Halves use the conventions
//! of `mod.rs`: bit k (LSB = 0) of a half is DES bit k+1.

use super::{IP, Schedule, sp_word};

/// Blocks processed side by side.
const WIDE: usize = 4;

const fn sp_words() -> [[u32; 64]; 8] {
    let mut t = [[0u32; 64]; 8];
    let mut p = 0;
    while p < 512 {
        t[p / 64][p % 64] = sp_word(p / 64, p % 64);
        p += 1;
    }
    t
}

static SP: [[u32; 64]; 8] = sp_words();

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

/// The round function: chunk j of E(r) is the half rotated right by
/// 4j - 1 (mod 32), six bits.
#[inline(always)]
fn f(r: u32, k: &[u8; 8]) -> u32 {
    let mut out = 0;
    for (j, kj) in k.iter().enumerate() {
        let chunk = (r.rotate_right(((4 * j + 31) % 32) as u32) as u8 & 0x3f) ^ kj;
        out ^= SP[j][chunk as usize];
    }
    out
}

#[inline(always)]
fn run_n<const N: usize>(passes: &[Schedule], data: &mut [u8]) {
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
pub(super) fn run(passes: &[Schedule], data: &mut [u8]) {
    super::super::interleaved(
        data,
        8 * WIDE,
        8,
        |c| run_n::<WIDE>(passes, c),
        |b| run_n::<1>(passes, b),
    );
}
