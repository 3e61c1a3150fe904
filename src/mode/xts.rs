//! XTS (IEEE 1619) with ciphertext stealing. The IV is the 16-byte initial
//! tweak; dm-crypt passes le64(sector) there (plain64). Tweaks for a whole
//! chunk are computed first so the data cipher gets many blocks per call.

use super::{CHUNK, Mode};
use crate::cipher::BlockCipher;

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
    /// Run full blocks through the data cipher, XORing with successive
    /// tweaks. Tweaks and XORs work on u128 words (little-endian, like the
    /// tweak itself): byte loops here cost more than the cipher.
    fn blocks(&self, t: &mut [u8; 16], data: &mut [u8], enc: bool) {
        let mut tweaks = [0u128; CHUNK / 16];
        let mut tv = u128::from_le_bytes(*t);
        let xor = |chunk: &mut [u8], tweaks: &[u128]| {
            for (b, tw) in chunk.chunks_exact_mut(16).zip(tweaks) {
                let v = u128::from_le_bytes((&*b).try_into().unwrap()) ^ tw;
                b.copy_from_slice(&v.to_le_bytes());
            }
        };
        for chunk in data.chunks_mut(CHUNK) {
            let nb = chunk.len() / 16;
            for tw in &mut tweaks[..nb] {
                *tw = tv;
                tv = double_u128(tv);
            }
            xor(chunk, &tweaks[..nb]);
            if enc {
                self.data.encrypt_blocks(chunk);
            } else {
                self.data.decrypt_blocks(chunk);
            }
            xor(chunk, &tweaks[..nb]);
        }
        *t = tv.to_le_bytes();
    }

    fn run(&self, iv: &[u8], data: &mut [u8], enc: bool) {
        let mut t = [0u8; 16];
        t.copy_from_slice(&iv[..16]);
        self.tweak.encrypt_blocks(&mut t);
        let tail = data.len() % 16;
        if tail == 0 {
            self.blocks(&mut t, data, enc);
            return;
        }
        // Ciphertext stealing over the last full block and the partial one.
        let full = data.len() - tail - 16;
        self.blocks(&mut t, &mut data[..full], enc);
        let (last, part) = data[full..].split_at_mut(16);
        let t1 = t;
        double(&mut t);
        let t2 = t;
        // Encryption uses T(m-1) then T(m); decryption the other way round.
        let (first, second) = if enc { (t1, t2) } else { (t2, t1) };
        super::whitened(&*self.data, &first, last, enc);
        let mut stolen = [0u8; 16];
        stolen[..tail].copy_from_slice(part);
        stolen[tail..].copy_from_slice(&last[tail..]);
        part.copy_from_slice(&last[..tail]);
        super::whitened(&*self.data, &second, &mut stolen, enc);
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
        self.run(iv, data, true);
    }
    fn decrypt(&self, iv: &mut [u8], data: &mut [u8]) {
        self.run(iv, data, false);
    }
}
