//! The bare Poly1305 evaluation Adiantum uses (no final "+ s"), on 26-bit
//! limbs. Adiantum hashes a few dozen bytes per sector with a fixed key, so
//! the crate's AVX2 backend, which precomputes powers of r on every new
//! instance, spent more time starting up than hashing. The crate is the
//! peer the tests compare against.

use zeroize::Zeroize;

const MASK: u32 = 0x3ff_ffff;

/// Clamped r in limbs, and 5 * r for the reduction.
#[derive(Clone)]
pub(super) struct Key {
    r: [u32; 5],
    s: [u32; 4],
}

impl Drop for Key {
    fn drop(&mut self) {
        self.r.zeroize();
        self.s.zeroize();
    }
}

fn words(b: &[u8]) -> [u32; 4] {
    core::array::from_fn(|i| u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()))
}

impl Key {
    pub(super) fn new(r: &[u8; 16]) -> Self {
        let t = words(r);
        // Split into 26-bit limbs with the clamp folded into the masks.
        let r = [
            t[0] & 0x3ff_ffff,
            ((t[0] >> 26) | (t[1] << 6)) & 0x3ff_ff03,
            ((t[1] >> 20) | (t[2] << 12)) & 0x3ff_c0ff,
            ((t[2] >> 14) | (t[3] << 18)) & 0x3f0_3fff,
            (t[3] >> 8) & 0x00f_ffff,
        ];
        let s = [r[1] * 5, r[2] * 5, r[3] * 5, r[4] * 5];
        Key { r, s }
    }

    /// The evaluation over whole 16-byte blocks, mod 2^128, little-endian.
    pub(super) fn eval(&self, blocks: &[u8]) -> u128 {
        let mut st = State::default();
        self.update(&mut st, blocks);
        st.finish()
    }

    /// Absorb whole 16-byte blocks.
    pub(super) fn update(&self, st: &mut State, blocks: &[u8]) {
        debug_assert!(blocks.len().is_multiple_of(16));
        let [r0, r1, r2, r3, r4] = self.r.map(u64::from);
        let [s1, s2, s3, s4] = self.s.map(u64::from);
        let h = &mut st.0;
        for m in blocks.chunks_exact(16) {
            let t = words(m);
            h[0] += t[0] & MASK;
            h[1] += ((t[0] >> 26) | (t[1] << 6)) & MASK;
            h[2] += ((t[1] >> 20) | (t[2] << 12)) & MASK;
            h[3] += ((t[2] >> 14) | (t[3] << 18)) & MASK;
            h[4] += (t[3] >> 8) | (1 << 24);
            let [h0, h1, h2, h3, h4] = h.map(u64::from);
            let d = [
                h0 * r0 + h1 * s4 + h2 * s3 + h3 * s2 + h4 * s1,
                h0 * r1 + h1 * r0 + h2 * s4 + h3 * s3 + h4 * s2,
                h0 * r2 + h1 * r1 + h2 * r0 + h3 * s4 + h4 * s3,
                h0 * r3 + h1 * r2 + h2 * r1 + h3 * r0 + h4 * s4,
                h0 * r4 + h1 * r3 + h2 * r2 + h3 * r1 + h4 * r0,
            ];
            let mut c = 0u64;
            for (hi, di) in h.iter_mut().zip(d) {
                let v = di + c;
                *hi = (v as u32) & MASK;
                c = v >> 26;
            }
            h[0] += (c as u32) * 5;
            h[1] += h[0] >> 26;
            h[0] &= MASK;
        }
    }
}

/// The accumulator, partly reduced, in 26-bit limbs.
#[derive(Default)]
pub(super) struct State([u32; 5]);

impl Drop for State {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl State {
    /// Reduce mod 2^130 - 5; the low 128 bits.
    pub(super) fn finish(mut self) -> u128 {
        let h = &mut self.0;
        // Full carry, then subtract p = 2^130 - 5 if h >= p.
        let mut c = 0;
        for hi in h[1..].iter_mut() {
            *hi += c;
            c = *hi >> 26;
            *hi &= MASK;
        }
        h[0] += c * 5;
        h[1] += h[0] >> 26;
        h[0] &= MASK;
        let mut g = [0u32; 5];
        let mut c = 5;
        for (gi, hi) in g.iter_mut().zip(h.iter()) {
            let v = *hi + c;
            *gi = v & MASK;
            c = v >> 26;
        }
        // g = h + 5 - 2^130: keep it when that did not go negative.
        let top = g[4].wrapping_add(c << 26).wrapping_sub(1 << 26);
        let take_g = 0u32.wrapping_sub(((top >> 31) ^ 1) & 1);
        for (hi, gi) in h.iter_mut().zip(g) {
            *hi = (*hi & !take_g) | (gi & take_g);
        }
        u128::from(h[0])
            | (u128::from(h[1]) << 26)
            | (u128::from(h[2]) << 52)
            | (u128::from(h[3]) << 78)
            | (u128::from(h[4]) << 104)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poly1305::Poly1305;
    use universal_hash::{KeyInit, UniversalHash};

    fn crate_eval(r: &[u8; 16], data: &[u8]) -> u128 {
        let mut k = [0u8; 32];
        k[..16].copy_from_slice(r);
        let mut p = Poly1305::new((&k).into());
        let (blocks, _) = poly1305::Block::slice_as_chunks(data);
        p.update(blocks);
        u128::from_le_bytes(p.finalize().into())
    }

    #[test]
    fn matches_the_poly1305_crate() {
        let mut seed = 0x1234_5678u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 56) as u8
        };
        for blocks in [0usize, 1, 2, 3, 8, 64] {
            for extreme in [None, Some(0x00u8), Some(0xff)] {
                let r: [u8; 16] = core::array::from_fn(|_| extreme.unwrap_or_else(&mut next));
                let data: Vec<u8> = (0..16 * blocks)
                    .map(|_| extreme.unwrap_or_else(&mut next))
                    .collect();
                assert_eq!(
                    Key::new(&r).eval(&data),
                    crate_eval(&r, &data),
                    "{blocks} blocks, {extreme:?}"
                );
            }
        }
    }
}
