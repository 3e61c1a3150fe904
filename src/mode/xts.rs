//! XTS (IEEE 1619) with ciphertext stealing. The IV is the 16-byte initial
//! tweak; dm-crypt passes le64(sector) there (plain64). Tweaks for a whole
//! chunk are computed first so the data cipher gets many blocks per call.

use super::{CHUNK, Mode};
use crate::cipher::{BlockCipher, Direction};

pub(super) struct Xts {
    pub(super) data: Box<dyn BlockCipher>,
    pub(super) tweak: Box<dyn BlockCipher>,
}

/// Multiply the tweak by x in GF(2^128), little-endian convention.
fn double_u128(v: u128) -> u128 {
    (v << 1) ^ ((v >> 127) * 0x87)
}

fn double(t: &mut [u8; 16]) {
    *t = double_u128(u128::from_le_bytes(*t)).to_le_bytes();
}

impl Xts {
    /// Run full blocks through the data cipher, whitened with successive
    /// tweaks. Tweaks are doubled as u128 words (little-endian, like the
    /// tweak itself): byte loops here cost more than the cipher.
    fn blocks(&self, t: &mut [u8; 16], data: &mut [u8], dir: Direction) {
        if self.data.xts_blocks(t, data, dir) {
            return;
        }
        let mut tweaks = [0u8; CHUNK];
        let mut tv = u128::from_le_bytes(*t);
        for chunk in data.chunks_mut(CHUNK) {
            for tw in tweaks[..chunk.len()].chunks_exact_mut(16) {
                tw.copy_from_slice(&tv.to_le_bytes());
                tv = double_u128(tv);
            }
            super::whitened(&*self.data, &tweaks[..chunk.len()], chunk, dir);
        }
        *t = tv.to_le_bytes();
    }

    fn run(&self, iv: &[u8], data: &mut [u8], dir: Direction) {
        let mut t = [0u8; 16];
        t.copy_from_slice(&iv[..16]);
        self.tweak.encrypt_blocks(&mut t);
        self.run_tweaked(t, data, dir);
    }

    /// Many sectors: all initial tweaks in one cipher call (one block per
    /// call is latency-bound), then each sector.
    fn run_sectors(&self, ivs: &mut [u8], data: &mut [u8], sector: usize, dir: Direction) {
        let lanes = data.len() / sector;
        if lanes < 2 || ivs.len() != 16 * lanes {
            let n = ivs.len() / lanes.max(1);
            for (k, unit) in data.chunks_exact_mut(sector).enumerate() {
                self.run(&ivs[k * n..(k + 1) * n], unit, dir);
            }
            return;
        }
        self.tweak.encrypt_blocks(ivs);
        for (t, unit) in ivs.chunks_exact(16).zip(data.chunks_exact_mut(sector)) {
            self.run_tweaked(t.try_into().unwrap(), unit, dir);
        }
    }

    /// One request with its tweak already encrypted.
    fn run_tweaked(&self, mut t: [u8; 16], data: &mut [u8], dir: Direction) {
        let tail = data.len() % 16;
        if tail == 0 {
            self.blocks(&mut t, data, dir);
            return;
        }
        // Ciphertext stealing over the last full block and the partial one.
        let full = data.len() - tail - 16;
        self.blocks(&mut t, &mut data[..full], dir);
        let (last, part) = data[full..].split_at_mut(16);
        let t1 = t;
        double(&mut t);
        let t2 = t;
        // Encryption uses T(m-1) then T(m); decryption the other way round.
        let (first, second) = match dir {
            Direction::Encrypt => (t1, t2),
            Direction::Decrypt => (t2, t1),
        };
        super::whitened(&*self.data, &first, last, dir);
        let mut stolen = [0u8; 16];
        stolen[..tail].copy_from_slice(part);
        stolen[tail..].copy_from_slice(&last[tail..]);
        part.copy_from_slice(&last[..tail]);
        super::whitened(&*self.data, &second, &mut stolen, dir);
        last.copy_from_slice(&stolen);
    }
}

impl Mode for Xts {
    fn iv_size(&self) -> usize {
        16
    }
    fn block_size(&self) -> usize {
        16
    }
    fn valid_len(&self, len: usize) -> bool {
        len >= 16
    }
    fn encrypt(&self, iv: &mut [u8], data: &mut [u8]) {
        self.run(iv, data, Direction::Encrypt);
    }
    fn decrypt(&self, iv: &mut [u8], data: &mut [u8]) {
        self.run(iv, data, Direction::Decrypt);
    }
    // The IV buffer is scratch (see `Mode`): the tweaks are encrypted there.
    fn crypt_sectors(&self, ivs: &mut [u8], data: &mut [u8], sector: usize, dir: Direction) {
        self.run_sectors(ivs, data, sector, dir);
    }
}
