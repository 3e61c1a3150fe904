//! Blowfish (Schneier, 1993), four blocks interleaved.
//!
//! A Blowfish round is a serial chain of four table lookups, so one block
//! leaves most of the core idle; the `blowfish` crate goes block by block.
//! The initial P-array and S-boxes are the hexadecimal digits of pi, which
//! we compute once (Machin's formula in fixed point) rather than paste in.
//! The crate stays the peer the tests compare against.

use super::BlockCipher;
use std::sync::OnceLock;
use zeroize::Zeroize;

const WORDS: usize = 18 + 4 * 256;

/// The first `n` 32-bit words of pi's fractional part.
fn pi_words(n: usize) -> Vec<u32> {
    // Fixed point: limb 0 is the integer part, then n words, then guard
    // limbs against truncation in the ~7000 series terms.
    let len = n + 4;
    fn div(x: &mut [u32], d: u32, from: usize) {
        let mut rem = 0u64;
        for limb in &mut x[from..] {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = (cur / u64::from(d)) as u32;
            rem = cur % u64::from(d);
        }
    }
    fn add_sub(acc: &mut [u32], t: &[u32], add: bool) {
        let mut carry = 0i64;
        for (a, b) in acc.iter_mut().zip(t).rev() {
            let v = i64::from(*a) + if add { i64::from(*b) } else { -i64::from(*b) } + carry;
            *a = v as u32;
            carry = v >> 32;
        }
    }
    fn mul(x: &mut [u32], m: u32) {
        let mut carry = 0u64;
        for limb in x.iter_mut().rev() {
            let v = u64::from(*limb) * u64::from(m) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
    }
    // arctan(1/x) = sum (-1)^k / ((2k+1) x^(2k+1))
    let atan = |x: u32| {
        let mut power = vec![0u32; len];
        power[0] = 1;
        div(&mut power, x, 0);
        let mut sum = power.clone();
        let mut term = vec![0u32; len];
        let mut first = 0; // leading zero limbs of `power`, skipped
        for k in 1u32.. {
            div(&mut power, x * x, first);
            while first < len && power[first] == 0 {
                first += 1;
            }
            if first == len {
                break;
            }
            term.copy_from_slice(&power);
            div(&mut term, 2 * k + 1, first);
            add_sub(&mut sum, &term, k % 2 == 0);
        }
        sum
    };
    let mut pi = atan(5);
    mul(&mut pi, 16);
    let mut b = atan(239);
    mul(&mut b, 4);
    add_sub(&mut pi, &b, false);
    pi[1..=n].to_vec()
}

/// P-array then the four S-boxes, before any key is mixed in.
fn initial_state() -> &'static [u32; WORDS] {
    static STATE: OnceLock<[u32; WORDS]> = OnceLock::new();
    STATE.get_or_init(|| pi_words(WORDS).try_into().unwrap())
}

pub(super) struct Blowfish {
    p: [u32; 18],
    s: Box<[[u32; 256]; 4]>,
}

impl Drop for Blowfish {
    fn drop(&mut self) {
        self.p.zeroize();
        self.s.iter_mut().for_each(|t| t.zeroize());
    }
}

/// Blocks processed side by side.
const WIDE: usize = 8;

impl Blowfish {
    /// `key` is 4 to 56 bytes (checked by the registry).
    pub(super) fn new(key: &[u8]) -> Self {
        let init = initial_state();
        let mut bf = Blowfish {
            p: init[..18].try_into().unwrap(),
            s: Box::new([[0; 256]; 4]),
        };
        for (i, s) in bf.s.iter_mut().enumerate() {
            s.copy_from_slice(&init[18 + 256 * i..18 + 256 * (i + 1)]);
        }
        let mut k = key.iter().cycle();
        for p in &mut bf.p {
            *p ^= u32::from_be_bytes([0; 4].map(|_| *k.next().unwrap()));
        }
        // Replace the P-array, then the S-boxes, by successive encryptions
        // of the all-zero block.
        let (mut l, mut r) = (0u32, 0u32);
        for i in (0..18).step_by(2) {
            (l, r) = bf.encrypt_words(l, r);
            bf.p[i] = l;
            bf.p[i + 1] = r;
        }
        for t in 0..4 {
            for i in (0..256).step_by(2) {
                (l, r) = bf.encrypt_words(l, r);
                bf.s[t][i] = l;
                bf.s[t][i + 1] = r;
            }
        }
        bf
    }

    #[inline(always)]
    fn f(&self, x: u32) -> u32 {
        let b = x.to_be_bytes();
        (self.s[0][b[0] as usize].wrapping_add(self.s[1][b[1] as usize]) ^ self.s[2][b[2] as usize])
            .wrapping_add(self.s[3][b[3] as usize])
    }

    fn encrypt_words(&self, mut l: u32, mut r: u32) -> (u32, u32) {
        for i in 0..16 {
            l ^= self.p[i];
            r ^= self.f(l);
            (l, r) = (r, l);
        }
        (r ^ self.p[17], l ^ self.p[16])
    }

    /// N blocks side by side; `order` lists the P-array indices of the 16
    /// rounds (reversed for decryption), `last` the two final whitening words.
    #[inline(always)]
    fn run_n<const N: usize>(&self, data: &mut [u8], enc: bool) {
        let word = |b: usize, i: usize| {
            u32::from_be_bytes(data[8 * b + 4 * i..8 * b + 4 * i + 4].try_into().unwrap())
        };
        let mut l: [u32; N] = core::array::from_fn(|b| word(b, 0));
        let mut r: [u32; N] = core::array::from_fn(|b| word(b, 1));
        for i in 0..16 {
            let k = self.p[if enc { i } else { 17 - i }];
            for b in 0..N {
                l[b] ^= k;
                r[b] ^= self.f(l[b]);
            }
            core::mem::swap(&mut l, &mut r);
        }
        let (kl, kr) = if enc {
            (self.p[17], self.p[16])
        } else {
            (self.p[0], self.p[1])
        };
        for b in 0..N {
            data[8 * b..8 * b + 4].copy_from_slice(&(r[b] ^ kl).to_be_bytes());
            data[8 * b + 4..8 * b + 8].copy_from_slice(&(l[b] ^ kr).to_be_bytes());
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

impl BlockCipher for Blowfish {
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
    use super::super::testing::assert_matches;
    use super::*;

    /// The published first P-array words and last S-box word (Schneier's
    /// reference tables).
    #[test]
    fn pi_digits_start_and_end_as_published() {
        let s = initial_state();
        assert_eq!(&s[..4], &[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344]);
        assert_eq!(s[WORDS - 1], 0x3ac372e6);
    }

    #[test]
    fn matches_the_blowfish_crate() {
        for klen in [4usize, 5, 8, 16, 33, 56] {
            let key: Vec<u8> = (0..klen).map(|i| (i * 73 + klen) as u8).collect();
            let ours = Blowfish::new(&key);
            let peer = super::super::adapter::keyed::<blowfish::Blowfish>(&key);
            for blocks in [1, WIDE - 1, WIDE, WIDE + 1, 3 * WIDE + 3] {
                let plain: Vec<u8> = (0..8 * blocks).map(|i| (i * 7 + klen) as u8).collect();
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
