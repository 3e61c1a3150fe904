//! elephant: BitLocker's AES-CBC with the Elephant diffuser.
//!
//! Key = data key | elephant key (halves; the elephant key keys AES-ECB).
//! Writing: XOR the sector key into every 32 bytes, diffuser A, diffuser B
//! (on little-endian 32-bit words), then CBC with the eboiv IV. Reading does
//! the reverse in `post`. The IV itself is eboiv's.

use super::{Direction, IvCheck, IvGenerator, IvRequest, IvSetup};
use crate::cipher::{self, BlockCipher};

const MAX_KEY: usize = 32;

struct Elephant {
    eboiv: Box<dyn IvGenerator>,
    ecb: Box<dyn BlockCipher>,
    sector_size: u64,
    /// Test-only fault: B before A on writes, A before B on reads.
    swapped: bool,
}

/// Index arithmetic modulo the word count, as the kernel's wrap-arounds.
fn at(n: usize, i: isize) -> usize {
    i.rem_euclid(n as isize) as usize
}

// The diffusers follow the kernel's loops: A runs 5 cycles with rotations
// 9, 0, 13, 0 over offsets (-2, -5); B runs 3 cycles with rotations 0, 10,
// 0, 25 over offsets (+2, +5). "encrypt" subtracts going down, "decrypt"
// adds going up.
fn diffuser_a_decrypt(d: &mut [u32]) {
    let n = d.len();
    let rot = [9, 0, 13, 0];
    for _ in 0..5 {
        for i1 in 0..n {
            let (i2, i3) = (at(n, i1 as isize - 2), at(n, i1 as isize - 5));
            let v = d[i2] ^ d[i3].rotate_left(rot[i1 % 4]);
            d[i1] = d[i1].wrapping_add(v);
        }
    }
}

fn diffuser_a_encrypt(d: &mut [u32]) {
    let n = d.len();
    let rot = [9, 0, 13, 0];
    for _ in 0..5 {
        for i1 in (0..n).rev() {
            let (i2, i3) = (at(n, i1 as isize - 2), at(n, i1 as isize - 5));
            let v = d[i2] ^ d[i3].rotate_left(rot[i1 % 4]);
            d[i1] = d[i1].wrapping_sub(v);
        }
    }
}

fn diffuser_b_decrypt(d: &mut [u32]) {
    let n = d.len();
    let rot = [0, 10, 0, 25];
    for _ in 0..3 {
        for i1 in 0..n {
            let (i2, i3) = (at(n, i1 as isize + 2), at(n, i1 as isize + 5));
            let v = d[i2] ^ d[i3].rotate_left(rot[i1 % 4]);
            d[i1] = d[i1].wrapping_add(v);
        }
    }
}

fn diffuser_b_encrypt(d: &mut [u32]) {
    let n = d.len();
    let rot = [0, 10, 0, 25];
    for _ in 0..3 {
        for i1 in (0..n).rev() {
            let (i2, i3) = (at(n, i1 as isize + 2), at(n, i1 as isize + 5));
            let v = d[i2] ^ d[i3].rotate_left(rot[i1 % 4]);
            d[i1] = d[i1].wrapping_sub(v);
        }
    }
}

impl Elephant {
    fn sector_key(&self, iv_sector: u64) -> [u8; 32] {
        let mut ks = [0u8; 32];
        let e = iv_sector.wrapping_mul(self.sector_size).to_le_bytes();
        ks[..8].copy_from_slice(&e);
        ks[16..24].copy_from_slice(&e);
        ks[31] = 0x80;
        self.ecb.encrypt_blocks(&mut ks);
        ks
    }

    fn words(data: &[u8], w: &mut [u32]) {
        for (x, c) in w.iter_mut().zip(data.chunks_exact(4)) {
            *x = u32::from_le_bytes(c.try_into().unwrap());
        }
    }

    fn unwords(w: &[u32], data: &mut [u8]) {
        for (x, c) in w.iter().zip(data.chunks_exact_mut(4)) {
            c.copy_from_slice(&x.to_le_bytes());
        }
    }

    fn xor_key(ks: &[u8; 32], data: &mut [u8]) {
        for chunk in data.chunks_exact_mut(32) {
            for (d, k) in chunk.iter_mut().zip(ks) {
                *d ^= k;
            }
        }
    }
}

impl IvGenerator for Elephant {
    fn generate(&self, r: &IvRequest, iv: &mut [u8], data: &mut [u8]) {
        if r.dir == Direction::Encrypt {
            let ks = self.sector_key(r.iv_sector);
            Self::xor_key(&ks, data);
            let mut w = [0u32; 1024];
            let w = &mut w[..data.len() / 4];
            Self::words(data, w);
            if self.swapped {
                diffuser_b_encrypt(w);
                diffuser_a_encrypt(w);
            } else {
                diffuser_a_encrypt(w);
                diffuser_b_encrypt(w);
            }
            Self::unwords(w, data);
        }
        self.eboiv.generate(r, iv, data);
    }

    fn post(&self, r: &IvRequest, _iv: &mut [u8], data: &mut [u8]) {
        if r.dir == Direction::Decrypt {
            let mut w = [0u32; 1024];
            let w = &mut w[..data.len() / 4];
            Self::words(data, w);
            if self.swapped {
                diffuser_a_decrypt(w);
                diffuser_b_decrypt(w);
            } else {
                diffuser_b_decrypt(w);
                diffuser_a_decrypt(w);
            }
            Self::unwords(w, data);
            Self::xor_key(&self.sector_key(r.iv_sector), data);
        }
    }
}

pub(super) fn check(c: &IvCheck) -> Result<(), String> {
    super::eboiv::check(c)
}

pub(super) fn extra_key_size(key_size: usize, _: &IvCheck) -> Result<usize, String> {
    let extra = key_size / 2;
    if extra > MAX_KEY {
        return Err(format!(
            "elephant takes data key | elephant key (halves, at most {MAX_KEY} bytes each); got a {key_size}-byte key"
        ));
    }
    Ok(extra)
}

pub(super) fn build(s: &IvSetup) -> Result<Box<dyn IvGenerator>, String> {
    let aes = cipher::lookup("aes").expect("aes is registered");
    let ecb = aes.new_keyed(s.extra_key).ok_or_else(|| {
        format!(
            "elephant key of {} bytes is not an AES key (16, 24 or 32 bytes)",
            s.extra_key.len()
        )
    })?;
    Ok(Box::new(Elephant {
        eboiv: super::eboiv::build(s)?,
        ecb,
        sector_size: s.sector_size as u64,
        swapped: s.fault.is(crate::fault::Fault::ElephantSwappedDiffusers),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_diffuser_direction_inverts_the_other() {
        for n in [128usize, 1024] {
            let orig: Vec<u32> = (0..n as u32)
                .map(|i| i.wrapping_mul(0x9e37_79b9) ^ 0x5555)
                .collect();
            let mut d = orig.clone();
            diffuser_a_encrypt(&mut d);
            assert_ne!(d, orig);
            diffuser_b_encrypt(&mut d);
            diffuser_b_decrypt(&mut d);
            diffuser_a_decrypt(&mut d);
            assert_eq!(d, orig);
        }
    }

    #[test]
    fn one_changed_word_spreads_over_the_whole_sector() {
        let mut a = vec![0u32; 128];
        let mut b = vec![0u32; 128];
        b[64] = 1;
        for d in [&mut a, &mut b] {
            diffuser_a_encrypt(d);
            diffuser_b_encrypt(d);
        }
        let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        assert!(same < 8, "{same} of 128 words unchanged");
    }
}
