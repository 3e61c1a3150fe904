//! LRW (IEEE P1619 draft, the kernel's lrw template). Key = K1 (cipher) | K2
//! (16 bytes). The IV is the big-endian index I of the first block; block j
//! is whitened with T = K2 * (I + j) in GF(2^128) ("bbe": big-endian,
//! x^128 + x^7 + x^2 + x + 1). Consecutive T differ by K2 * (2^(k+1) - 1),
//! k = trailing ones of the index, so a 128-entry table gives each next T.

use super::{CHUNK, Mode};
use crate::cipher::{BlockCipher, Direction};
use zeroize::Zeroizing;

pub(super) struct Lrw {
    cipher: Box<dyn BlockCipher>,
    k2: Zeroizing<u128>,
    /// step[k] = K2 * (2^(k+1) - 1)
    step: Box<Zeroizing<[u128; 128]>>,
}

fn double(v: u128) -> u128 {
    (v << 1) ^ ((v >> 127) * 0x87)
}

/// Multiply in GF(2^128), bbe convention (bit i of the integer is x^i).
fn gf_mul(a: u128, b: u128) -> u128 {
    let mut r = 0u128;
    for i in (0..128).rev() {
        r = double(r);
        if (b >> i) & 1 == 1 {
            r ^= a;
        }
    }
    r
}

impl Lrw {
    pub(super) fn new(cipher: Box<dyn BlockCipher>, k2: &[u8]) -> Self {
        let k2 = u128::from_be_bytes(k2.try_into().expect("16-byte tweak key"));
        let mut step = Box::new(Zeroizing::new([0u128; 128]));
        let mut ones = 0u128;
        for s in step.iter_mut() {
            ones = (ones << 1) | 1;
            *s = gf_mul(k2, ones);
        }
        Lrw {
            cipher,
            k2: Zeroizing::new(k2),
            step,
        }
    }

    fn run(&self, iv: &[u8], data: &mut [u8], dir: Direction) {
        let mut index = u128::from_be_bytes(iv[..16].try_into().unwrap());
        let mut t = gf_mul(*self.k2, index);
        let mut tweaks = [0u8; CHUNK];
        for chunk in data.chunks_mut(CHUNK) {
            for tw in tweaks[..chunk.len()].chunks_exact_mut(16) {
                tw.copy_from_slice(&t.to_be_bytes());
                t ^= self.step[index.trailing_ones().min(127) as usize];
                index = index.wrapping_add(1);
            }
            super::whitened(&*self.cipher, &tweaks[..chunk.len()], chunk, dir);
        }
    }
}

impl Mode for Lrw {
    fn iv_size(&self) -> usize {
        16
    }
    fn block_size(&self) -> usize {
        16
    }
    fn valid_len(&self, len: usize) -> bool {
        len.is_multiple_of(16)
    }
    fn encrypt(&self, iv: &mut [u8], data: &mut [u8]) {
        self.run(iv, data, Direction::Encrypt);
    }
    fn decrypt(&self, iv: &mut [u8], data: &mut [u8]) {
        self.run(iv, data, Direction::Decrypt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_step_table_matches_direct_multiplication() {
        let k2 = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210u128;
        let l = Lrw::new(
            crate::cipher::lookup("aes")
                .unwrap()
                .new_keyed(&[0; 16])
                .unwrap(),
            &k2.to_be_bytes(),
        );
        for start in [0u128, 1, 7, u64::MAX as u128, u128::MAX - 3] {
            let mut t = gf_mul(k2, start);
            let mut i = start;
            for _ in 0..8 {
                t ^= l.step[i.trailing_ones().min(127) as usize];
                i = i.wrapping_add(1);
                assert_eq!(t, gf_mul(k2, i), "index {i}");
            }
        }
    }
}
