//! CFB (crypto/cfb.c, gone from kernels after 6.6): C_i = P_i ^ E(C_{i-1}),
//! C_0 = IV. A stream mode: any length; a short last block uses part of
//! its keystream block.

use super::{Mode, xor_in_place};
use crate::cipher::BlockCipher;

pub(super) struct Cfb(pub(super) Box<dyn BlockCipher>);

impl Mode for Cfb {
    super::stream_mode_sizes!();
    fn encrypt(&self, iv: &mut [u8], data: &mut [u8]) {
        let bs = self.0.block_size();
        let mut prev = [0u8; 16];
        prev[..bs].copy_from_slice(&iv[..bs]);
        for chunk in data.chunks_mut(bs) {
            self.0.encrypt_blocks(&mut prev[..bs]);
            xor_in_place(chunk, &prev[..chunk.len()]);
            prev[..chunk.len()].copy_from_slice(chunk);
        }
    }
    fn decrypt(&self, iv: &mut [u8], data: &mut [u8]) {
        let bs = self.0.block_size();
        let mut prev = [0u8; 16];
        prev[..bs].copy_from_slice(&iv[..bs]);
        for chunk in data.chunks_mut(bs) {
            let mut ks = prev;
            self.0.encrypt_blocks(&mut ks[..bs]);
            prev[..chunk.len()].copy_from_slice(chunk);
            xor_in_place(chunk, &ks[..chunk.len()]);
        }
    }
}
