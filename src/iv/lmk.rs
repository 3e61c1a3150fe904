//! lmk: loop-AES compatible IVs (v2: no seed; v3: 64 keys + a seed key).
//!
//! The IV is the raw MD5 state (no padding, no finalisation) after hashing
//! [the seed block,] plaintext bytes 16..512 and a 16-byte sector trailer.
//! Writing hashes the plaintext before encryption. Reading decrypts with a
//! zero IV, then hashes the decrypted blocks 1..31 and XORs the result into
//! block 0, which is why this generator needs the `post` hook.

use super::{Direction, IvCheck, IvGenerator, IvRequest, IvSetup};
use md5::block_api::compress;

const MD5_INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

struct Lmk {
    /// 64-byte seed block: 16 seed bytes, then zeros (v3 only).
    seed: Option<zeroize::Zeroizing<[u8; 64]>>,
}

impl Lmk {
    fn iv(&self, iv_sector: u64, data: &[u8], iv: &mut [u8]) {
        let mut state = MD5_INIT;
        if let Some(seed) = &self.seed {
            compress(&mut state, &[**seed]);
        }
        // Bytes 16..512 and the 16-byte trailer make 512 = 8 whole MD5 blocks.
        let mut blocks = [[0u8; 64]; 8];
        let flat = blocks.as_flattened_mut();
        flat[..496].copy_from_slice(&data[16..512]);
        let hi = ((iv_sector >> 32) as u32 & 0x00ff_ffff) | 0x8000_0000;
        flat[496..500].copy_from_slice(&(iv_sector as u32).to_le_bytes());
        flat[500..504].copy_from_slice(&hi.to_le_bytes());
        flat[504..508].copy_from_slice(&4024u32.to_le_bytes());
        compress(&mut state, &blocks);
        let mut out = [0u8; 16];
        for (o, w) in out.chunks_exact_mut(4).zip(state) {
            o.copy_from_slice(&w.to_le_bytes());
        }
        let n = iv.len().min(16);
        iv[..n].copy_from_slice(&out[..n]);
    }
}

impl IvGenerator for Lmk {
    fn generate(&self, r: &IvRequest, iv: &mut [u8], data: &mut [u8]) {
        if r.dir == Direction::Encrypt {
            self.iv(r.iv_sector, data, iv);
        }
    }

    fn post(&self, r: &IvRequest, iv: &mut [u8], data: &mut [u8]) {
        if r.dir == Direction::Decrypt {
            self.iv(r.iv_sector, data, iv);
            for (d, i) in data.iter_mut().zip(iv.iter()) {
                *d ^= i;
            }
        }
    }
}

pub(super) fn check(c: &IvCheck) -> Result<(), String> {
    super::only_512("lmk", c)
}

/// v3 is recognised by a key that does not split evenly over the keys:
/// then one more part, of the same size, is the seed.
pub(super) fn extra_key_size(key_size: usize, c: &IvCheck) -> Result<usize, String> {
    let kc = c.keycount as usize;
    Ok(if !key_size.is_multiple_of(kc) {
        key_size / (kc + 1)
    } else {
        0
    })
}

/// A v3 key whose parts are shorter than 16 bytes: crypt_iv_lmk_init
/// copies 16 seed bytes from the last part whatever its size, so the bytes
/// past the key come from memory the key does not own (5.10 to 6.12 read
/// them silently; 7.2's FORTIFY_SOURCE reports the overflow and BUGs).
pub(super) fn undefined(s: &IvSetup) -> Option<String> {
    if s.fault.is(crate::fault::Fault::LmkShortSeedPadded) {
        return None;
    }
    (!s.extra_key.is_empty() && s.extra_key.len() < 16).then(|| {
        let past = 16 - s.extra_key.len();
        format!(
            "lmk copies a 16-byte seed from a {}-byte key part: the kernel reads {past} {} past the key (crypt_iv_lmk_init)",
            s.extra_key.len(),
            if past == 1 { "byte" } else { "bytes" }
        )
    })
}

pub(super) fn build(s: &IvSetup) -> Result<Box<dyn IvGenerator>, String> {
    let seed = (!s.extra_key.is_empty()).then(|| seed_block(s.key, s.keycount));
    Ok(Box::new(Lmk { seed }))
}

/// The v3 seed as the hash's first block: 16 bytes at
/// `keycount * (key_size / key_parts)` (crypt_iv_lmk_init), then zeros.
/// Parts under 16 bytes reach here only for the broken reference
/// (`Fault::LmkShortSeedPadded`), which pads with zeros as an old
/// reference did.
fn seed_block(key: &[u8], keycount: usize) -> zeroize::Zeroizing<[u8; 64]> {
    let at = keycount * (key.len() / (keycount + 1));
    let n = (key.len() - at).min(16);
    let mut block = zeroize::Zeroizing::new([0u8; 64]);
    block[..n].copy_from_slice(&key[at..at + n]);
    block
}

#[cfg(test)]
mod tests {
    use super::seed_block;

    #[test]
    fn the_seed_is_the_last_part() {
        // des:64-cbc-lmk: 65 parts of 8 bytes, the seed part at 512.
        let key: Vec<u8> = (0..65 * 8).map(|i| (i % 251 + 1) as u8).collect();
        let b = seed_block(&key, 64);
        assert_eq!(&b[..8], &key[512..520]);
        assert!(b[8..].iter().all(|&x| x == 0), "{:?}", &b[..16]);
        // 16-byte parts: exactly the last part.
        let key: Vec<u8> = (0..65 * 16).map(|i| (i % 253 + 1) as u8).collect();
        let b = seed_block(&key, 64);
        assert_eq!(&b[..16], &key[1024..1040]);
        assert!(b[16..].iter().all(|&x| x == 0));
    }
}
