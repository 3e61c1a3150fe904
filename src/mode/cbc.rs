//! CBC. Encryption is serial by nature (one block per cipher call); decryption
//! hands the cipher a whole chunk at once and XORs afterwards from a saved copy.

use super::{CHUNK, Mode, xor_in_place};
use crate::cipher::BlockCipher;

pub(super) struct Cbc(pub(super) Box<dyn BlockCipher>);

impl Mode for Cbc {
    fn iv_size(&self) -> usize {
        self.0.block_size()
    }
    fn block_size(&self) -> usize {
        self.0.block_size()
    }
    fn valid_len(&self, len: usize) -> bool {
        len.is_multiple_of(self.0.block_size())
    }

    fn encrypt(&self, iv: &mut [u8], data: &mut [u8]) {
        let bs = self.0.block_size();
        let mut prev: &[u8] = &iv[..bs];
        for block in data.chunks_exact_mut(bs) {
            xor_in_place(block, prev);
            self.0.encrypt_blocks(block);
            prev = block;
        }
    }

    fn decrypt(&self, iv: &mut [u8], data: &mut [u8]) {
        let bs = self.0.block_size();
        let mut saved = [0u8; CHUNK];
        let mut chain = [0u8; 16];
        chain[..bs].copy_from_slice(&iv[..bs]);
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
