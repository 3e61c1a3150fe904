//! tcw: TrueCrypt before 4.1 (CBC with an IV seed and whitening).
//!
//! Key = data key(s) | IV seed (iv_size bytes) | whitening (16 bytes). The IV
//! is the seed XOR le64(sector) in each 8-byte half. The whitening, derived
//! per sector through CRC32, is XORed over the ciphertext: added after
//! encryption (`post`), removed before decryption (`generate`).

use super::{Direction, IvCheck, IvGenerator, IvRequest, IvSetup};
use zeroize::Zeroizing;

const WHITENING: usize = 16;

struct Tcw {
    iv_seed: Zeroizing<Vec<u8>>,
    whitening: Zeroizing<[u8; WHITENING]>,
    /// Test-only fault: skip the CRC32 step.
    no_crc: bool,
}

/// The kernel's crc32 shash: crc32_le with seed 0 and no final inversion.
fn crc32_le_raw(data: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    crc
}

impl Tcw {
    fn whiten(&self, iv_sector: u64, data: &mut [u8]) {
        let s = iv_sector.to_le_bytes();
        let mut buf = [0u8; WHITENING];
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.whitening[i] ^ s[i % 8];
        }
        for word in buf.chunks_exact_mut(4).filter(|_| !self.no_crc) {
            let c = crc32_le_raw(word);
            word.copy_from_slice(&c.to_le_bytes());
        }
        for i in 0..4 {
            buf[i] ^= buf[12 + i];
            buf[4 + i] ^= buf[8 + i];
        }
        for chunk in data[..512].chunks_exact_mut(8) {
            for (d, w) in chunk.iter_mut().zip(&buf[..8]) {
                *d ^= w;
            }
        }
    }
}

impl IvGenerator for Tcw {
    fn generate(&self, r: &IvRequest, iv: &mut [u8], data: &mut [u8]) {
        if r.dir == Direction::Decrypt {
            self.whiten(r.iv_sector, data);
        }
        let s = r.iv_sector.to_le_bytes();
        for (i, b) in iv.iter_mut().enumerate() {
            *b = self.iv_seed[i] ^ s[i % 8];
        }
    }

    fn post(&self, r: &IvRequest, _iv: &mut [u8], data: &mut [u8]) {
        if r.dir == Direction::Encrypt {
            self.whiten(r.iv_sector, data);
        }
    }
}

pub(super) fn check(c: &IvCheck) -> Result<(), String> {
    super::only_512("tcw", c)
}

pub(super) fn extra_key_size(key_size: usize, c: &IvCheck) -> Result<usize, String> {
    let extra = c.iv_size + WHITENING;
    if key_size <= extra {
        return Err(format!(
            "tcw takes data key | IV seed ({} bytes) | whitening (16 bytes); a {key_size}-byte key leaves no data key",
            c.iv_size
        ));
    }
    Ok(extra)
}

pub(super) fn build(s: &IvSetup) -> Result<Box<dyn IvGenerator>, String> {
    let (seed, white) = s.extra_key.split_at(s.iv_size);
    let mut whitening = Zeroizing::new([0u8; WHITENING]);
    whitening.copy_from_slice(white);
    Ok(Box::new(Tcw {
        iv_seed: Zeroizing::new(seed.to_vec()),
        whitening,
        no_crc: s.fault.is(crate::fault::Fault::TcwNoCrc),
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32_without_inversion_relates_to_the_standard_crc() {
        // Standard CRC-32 = !raw(!0 ...): check the raw form against that identity
        // on "123456789" (standard check value 0xcbf43926).
        let d = b"123456789";
        let mut crc = 0xffff_ffffu32;
        for &b in d {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
            }
        }
        assert_eq!(!crc, 0xcbf4_3926);
        assert_eq!(super::crc32_le_raw(&[0, 0, 0, 0]), 0);
    }
}
