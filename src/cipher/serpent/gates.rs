//! Serpent bit-sliced over any register of 32-bit lanes with two-operand
//! logic (SSE2, AVX2): the S-boxes are the gate circuits of `circuits.rs`,
//! whose input and output masks are folded into the round keys here.
//!
//! Round r computes LT(S(x ^ K_r)). A circuit computes C(z) = S(z ^ a) ^ b,
//! so feeding it x ^ K_r ^ a gives the S-box output off by b, and LT, being
//! linear, turns that into LT(b): the next round key absorbs it. Each key
//! of `Masked` is therefore K_r ^ a_r ^ LT(b_{r-1}) (and the last one
//! K_32 ^ b_31); decryption runs the same argument backwards.

use super::circuits::{self, MASKS};
use super::{ROUNDS, Words};
use zeroize::Zeroizing;

/// The two-operand logic every backend has in one instruction.
pub(super) trait Gates: Copy {
    fn and(self, o: Self) -> Self;
    fn or(self, o: Self) -> Self;
    fn xor(self, o: Self) -> Self;
    /// `!self & o`, as `pandn`.
    fn andnot(self, o: Self) -> Self;
}

/// A register of 32-bit lanes: the gates, shifts and a broadcast.
pub(super) trait Lanes: Gates {
    /// A round-key word in every lane.
    fn key(k: &Splat) -> Self;
    /// Left shift by `L`.
    fn shl<const L: i32>(self) -> Self;
    /// Left rotation by `L`; `R` is `32 - L` (stable Rust cannot compute it
    /// in a const argument).
    fn rotl<const L: i32, const R: i32>(self) -> Self;
}

/// Scalar lanes: the key schedule runs the linear transform on constants,
/// and the tests run the circuits on truth tables.
impl Gates for u32 {
    fn and(self, o: u32) -> u32 {
        self & o
    }
    fn or(self, o: u32) -> u32 {
        self | o
    }
    fn xor(self, o: u32) -> u32 {
        self ^ o
    }
    fn andnot(self, o: u32) -> u32 {
        !self & o
    }
}

impl Lanes for u32 {
    fn key(k: &Splat) -> u32 {
        k.0[0]
    }
    fn shl<const L: i32>(self) -> u32 {
        self << L
    }
    fn rotl<const L: i32, const R: i32>(self) -> u32 {
        debug_assert_eq!(L + R, 32);
        self.rotate_left(L as u32)
    }
}

/// Two register sets run as one: every operation is issued for both, so
/// the second set's work fills the gaps in the first's dependency chain (a
/// round's chain is about as long as its instructions take to issue).
#[derive(Clone, Copy)]
pub(super) struct Pair<V>(pub(super) [V; 2]);

impl<V: Gates> Gates for Pair<V> {
    #[inline(always)]
    fn and(self, o: Self) -> Self {
        Pair([self.0[0].and(o.0[0]), self.0[1].and(o.0[1])])
    }
    #[inline(always)]
    fn or(self, o: Self) -> Self {
        Pair([self.0[0].or(o.0[0]), self.0[1].or(o.0[1])])
    }
    #[inline(always)]
    fn xor(self, o: Self) -> Self {
        Pair([self.0[0].xor(o.0[0]), self.0[1].xor(o.0[1])])
    }
    #[inline(always)]
    fn andnot(self, o: Self) -> Self {
        Pair([self.0[0].andnot(o.0[0]), self.0[1].andnot(o.0[1])])
    }
}

impl<V: Lanes> Lanes for Pair<V> {
    #[inline(always)]
    fn key(k: &Splat) -> Self {
        let v = V::key(k);
        Pair([v, v])
    }
    #[inline(always)]
    fn shl<const L: i32>(self) -> Self {
        Pair([self.0[0].shl::<L>(), self.0[1].shl::<L>()])
    }
    #[inline(always)]
    fn rotl<const L: i32, const R: i32>(self) -> Self {
        Pair([self.0[0].rotl::<L, R>(), self.0[1].rotl::<L, R>()])
    }
}

/// One key word repeated for the widest register (AVX2's eight lanes),
/// aligned so SSE2 and AVX2 can take it as a memory operand.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
pub(super) struct Splat(pub(super) [u32; 8]);

type SplatKey = [Splat; 4];

/// Round keys with the circuits' masks folded in, both directions, each
/// word already broadcast.
pub(super) struct Masked {
    enc: [SplatKey; ROUNDS + 1],
    dec: [SplatKey; ROUNDS + 1],
}

fn splat(w: Words) -> SplatKey {
    w.map(|v| Splat([v; 8]))
}

/// A mask nibble as four word planes.
fn planes(m: u8) -> Words {
    core::array::from_fn(|j| if (m >> j) & 1 == 1 { !0 } else { 0 })
}

fn xor(a: Words, b: Words) -> Words {
    core::array::from_fn(|j| a[j] ^ b[j])
}

fn lt_words(w: Words) -> Words {
    let mut x = w;
    lt(&mut x);
    x
}

impl Masked {
    pub(super) fn new(keys: &[Words; ROUNDS + 1]) -> Zeroizing<Masked> {
        let mask = |i: usize| (planes(MASKS[i].0), planes(MASKS[i].1));
        let mut m = Zeroizing::new(Masked {
            enc: [splat([0; 4]); ROUNDS + 1],
            dec: [splat([0; 4]); ROUNDS + 1],
        });
        // Encryption: circuit s(r mod 8) runs round r.
        for (r, key) in keys.iter().enumerate() {
            let a = if r < ROUNDS { mask(r % 8).0 } else { [0; 4] };
            let b = if r == 0 {
                [0; 4]
            } else if r < ROUNDS {
                lt_words(mask((r - 1) % 8).1)
            } else {
                mask((r - 1) % 8).1
            };
            m.enc[r] = splat(xor(xor(*key, a), b));
        }
        // Decryption: circuit i(r mod 8) undoes round r; its output mask
        // meets key r, and the input mask of the circuit after it passes
        // back through the inverse transform.
        for (r, key) in keys.iter().enumerate() {
            let b = if r < ROUNDS {
                mask(8 + r % 8).1
            } else {
                [0; 4]
            };
            let a = if r == 0 {
                [0; 4]
            } else if r < ROUNDS {
                lt_words(mask(8 + (r - 1) % 8).0)
            } else {
                mask(8 + (r - 1) % 8).0
            };
            m.dec[r] = splat(xor(xor(*key, a), b));
        }
        m
    }
}

impl zeroize::Zeroize for Masked {
    fn zeroize(&mut self) {
        for k in self.enc.iter_mut().chain(self.dec.iter_mut()) {
            for s in k {
                s.0.zeroize();
            }
        }
    }
}

#[inline(always)]
fn mix<V: Lanes>(x: &mut [V; 4], k: &SplatKey) {
    for j in 0..4 {
        x[j] = x[j].xor(V::key(&k[j]));
    }
}

/// The linear transformation (specification, section 2.3).
#[inline(always)]
pub(super) fn lt<V: Lanes>(x: &mut [V; 4]) {
    let [mut a, mut b, mut c, mut d] = *x;
    a = a.rotl::<13, 19>();
    c = c.rotl::<3, 29>();
    b = b.xor(a).xor(c);
    d = d.xor(c).xor(a.shl::<3>());
    b = b.rotl::<1, 31>();
    d = d.rotl::<7, 25>();
    a = a.xor(b).xor(d);
    c = c.xor(d).xor(b.shl::<7>());
    a = a.rotl::<5, 27>();
    c = c.rotl::<22, 10>();
    *x = [a, b, c, d];
}

#[inline(always)]
fn inv_lt<V: Lanes>(x: &mut [V; 4]) {
    let [mut a, mut b, mut c, mut d] = *x;
    c = c.rotl::<10, 22>();
    a = a.rotl::<27, 5>();
    c = c.xor(d).xor(b.shl::<7>());
    a = a.xor(b).xor(d);
    d = d.rotl::<25, 7>();
    b = b.rotl::<31, 1>();
    d = d.xor(c).xor(a.shl::<3>());
    b = b.xor(a).xor(c);
    c = c.rotl::<29, 3>();
    a = a.rotl::<19, 13>();
    *x = [a, b, c, d];
}

/// Encrypt or decrypt two bit-sliced register sets as one `Pair`.
#[inline(always)]
pub(super) fn crypt_pair<V: Lanes>(k: &Masked, sets: [[V; 4]; 2], enc: bool) -> [[V; 4]; 2] {
    let mut x: [Pair<V>; 4] = core::array::from_fn(|j| Pair([sets[0][j], sets[1][j]]));
    if enc {
        encrypt(k, &mut x);
    } else {
        decrypt(k, &mut x);
    }
    [0, 1].map(|h| x.map(|v| v.0[h]))
}

/// Encrypt the bit-sliced words of one register set.
#[inline(always)]
pub(super) fn encrypt<V: Lanes>(k: &Masked, x: &mut [V; 4]) {
    let k = &k.enc;
    for r in (0..ROUNDS).step_by(8) {
        mix(x, &k[r]);
        circuits::s0(x);
        lt(x);
        mix(x, &k[r + 1]);
        circuits::s1(x);
        lt(x);
        mix(x, &k[r + 2]);
        circuits::s2(x);
        lt(x);
        mix(x, &k[r + 3]);
        circuits::s3(x);
        lt(x);
        mix(x, &k[r + 4]);
        circuits::s4(x);
        lt(x);
        mix(x, &k[r + 5]);
        circuits::s5(x);
        lt(x);
        mix(x, &k[r + 6]);
        circuits::s6(x);
        lt(x);
        mix(x, &k[r + 7]);
        circuits::s7(x);
        // The last round replaces the transformation by a key.
        if r + 8 < ROUNDS {
            lt(x);
        }
    }
    mix(x, &k[ROUNDS]);
}

/// Decrypt the bit-sliced words of one register set.
#[inline(always)]
pub(super) fn decrypt<V: Lanes>(k: &Masked, x: &mut [V; 4]) {
    let k = &k.dec;
    mix(x, &k[ROUNDS]);
    for r in (0..ROUNDS).step_by(8).rev() {
        if r + 8 < ROUNDS {
            inv_lt(x);
        }
        circuits::i7(x);
        mix(x, &k[r + 7]);
        inv_lt(x);
        circuits::i6(x);
        mix(x, &k[r + 6]);
        inv_lt(x);
        circuits::i5(x);
        mix(x, &k[r + 5]);
        inv_lt(x);
        circuits::i4(x);
        mix(x, &k[r + 4]);
        inv_lt(x);
        circuits::i3(x);
        mix(x, &k[r + 3]);
        inv_lt(x);
        circuits::i2(x);
        mix(x, &k[r + 2]);
        inv_lt(x);
        circuits::i1(x);
        mix(x, &k[r + 1]);
        inv_lt(x);
        circuits::i0(x);
        mix(x, &k[r]);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{INV_SBOX, SBOX};
    use super::*;

    /// Inputs as truth tables: lane bit z of input i is bit i of z.
    const IN: [u32; 4] = [0xAAAA, 0xCCCC, 0xF0F0, 0xFF00];

    fn run(i: usize, x: &mut [u32; 4]) {
        let f = [
            circuits::s0::<u32>,
            circuits::s1,
            circuits::s2,
            circuits::s3,
            circuits::s4,
            circuits::s5,
            circuits::s6,
            circuits::s7,
            circuits::i0,
            circuits::i1,
            circuits::i2,
            circuits::i3,
            circuits::i4,
            circuits::i5,
            circuits::i6,
            circuits::i7,
        ];
        f[i](x)
    }

    /// Every circuit computes its S-box under its masks, for all 16 inputs.
    #[test]
    fn circuits_compute_the_sboxes_under_their_masks() {
        for i in 0..16 {
            let table = if i < 8 { SBOX[i] } else { INV_SBOX[i - 8] };
            let (a, b) = MASKS[i];
            let mut x = IN;
            run(i, &mut x);
            for z in 0..16 {
                let got = (0..4).fold(0u8, |n, j| n | ((((x[j] >> z) & 1) as u8) << j));
                assert_eq!(got, table[z ^ a as usize] ^ b, "circuit {i}, input {z}");
            }
        }
    }

    /// The folded keys make the scalar bit-sliced cipher Serpent itself
    /// (checked against the crate), and decryption undoes encryption.
    #[test]
    fn masked_keys_give_serpent() {
        let key: [u8; 32] = core::array::from_fn(|i| (i * 29 + 3) as u8);
        let keys = super::super::schedule(&key);
        let m = Masked::new(&keys);
        let block: [u8; 16] = core::array::from_fn(|i| (i * 7 + 1) as u8);
        let mut x: [u32; 4] = core::array::from_fn(|j| {
            u32::from_le_bytes(block[4 * j..4 * j + 4].try_into().unwrap())
        });
        encrypt(&m, &mut x);
        let ours: Vec<u8> = x.iter().flat_map(|w| w.to_le_bytes()).collect();
        let peer = super::super::super::adapter::keyed::<serpent::Serpent>(&key[..]);
        let mut b = block;
        peer.encrypt_blocks(&mut b);
        assert_eq!(ours, b);
        decrypt(&m, &mut x);
        let back: Vec<u8> = x.iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(back, block);
    }
}
