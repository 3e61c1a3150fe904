//! CBC. Encryption is serial by nature (one block per cipher call); decryption
//! hands the cipher a whole chunk at once and XORs afterwards from a saved copy.

use super::{CHUNK, Mode, xor_in_place};
use crate::cipher::{BlockCipher, Direction};

pub(super) struct Cbc(pub(super) Box<dyn BlockCipher>);

impl Mode for Cbc {
    super::block_mode_sizes!();

    fn encrypt(&self, iv: &mut [u8], data: &mut [u8]) {
        let bs = self.0.block_size();
        let mut chain = [0u8; 16];
        chain[..bs].copy_from_slice(&iv[..bs]);
        if self.0.cbc_encrypt_blocks(&mut chain[..bs], data) {
            return;
        }
        let mut prev: &[u8] = &iv[..bs];
        for block in data.chunks_exact_mut(bs) {
            xor_in_place(block, prev);
            self.0.encrypt_blocks(block);
            prev = block;
        }
    }

    /// CBC encryption is serial within a sector but sectors are independent:
    /// encrypt block j of every sector of the group in one cipher call.
    /// (Decryption is parallel within a sector already: sector by sector.)
    fn crypt_sectors(&self, ivs: &mut [u8], data: &mut [u8], sector: usize, dir: Direction) {
        let bs = self.0.block_size();
        let lanes = data.len() / sector;
        let n = ivs.len() / lanes.max(1);
        if lanes < 2 || dir == Direction::Decrypt {
            for (k, unit) in data.chunks_exact_mut(sector).enumerate() {
                self.crypt(&mut ivs[k * n..(k + 1) * n], unit, dir);
            }
            return;
        }
        // chain[l] is the previous ciphertext block of lane l.
        let mut chain = [0u8; super::LANES * 16];
        for l in 0..lanes {
            chain[l * bs..(l + 1) * bs].copy_from_slice(&ivs[l * n..l * n + bs]);
        }
        let batch = &mut chain[..lanes * bs];
        for j in (0..sector).step_by(bs) {
            for l in 0..lanes {
                let block = &data[l * sector + j..l * sector + j + bs];
                xor_in_place(&mut batch[l * bs..(l + 1) * bs], block);
            }
            self.0.encrypt_blocks(batch);
            for l in 0..lanes {
                data[l * sector + j..l * sector + j + bs]
                    .copy_from_slice(&batch[l * bs..(l + 1) * bs]);
            }
        }
    }

    fn decrypt(&self, iv: &mut [u8], data: &mut [u8]) {
        let bs = self.0.block_size();
        let mut chain = [0u8; 16];
        chain[..bs].copy_from_slice(&iv[..bs]);
        if self.0.cbc_decrypt_blocks(&mut chain[..bs], data) {
            return;
        }
        // Only the unfused path needs the copy (zeroing it cost a fused
        // one-sector call a few percent).
        let mut saved = [0u8; CHUNK];
        for chunk in data.chunks_mut(CHUNK) {
            let n = chunk.len();
            saved[..n].copy_from_slice(chunk);
            self.0.decrypt_blocks(chunk);
            xor_in_place(&mut chunk[..bs], &chain[..bs]);
            xor_in_place(&mut chunk[bs..], &saved[..n - bs]);
            chain[..bs].copy_from_slice(&saved[n - bs..n]);
        }
    }
}
