//! OFB (crypto/ofb.c, gone from kernels after 6.6): keystream blocks
//! E(IV), E(E(IV)), ... A stream mode: any length.

use super::{Mode, xor_in_place};
use crate::cipher::BlockCipher;

pub(super) struct Ofb(pub(super) Box<dyn BlockCipher>);

impl Mode for Ofb {
    super::stream_mode_sizes!();
    fn encrypt(&self, iv: &mut [u8], data: &mut [u8]) {
        let bs = self.0.block_size();
        let mut o = [0u8; 16];
        o[..bs].copy_from_slice(&iv[..bs]);
        for chunk in data.chunks_mut(bs) {
            self.0.encrypt_blocks(&mut o[..bs]);
            xor_in_place(chunk, &o[..chunk.len()]);
        }
    }
    fn decrypt(&self, iv: &mut [u8], data: &mut [u8]) {
        self.encrypt(iv, data);
    }
}
