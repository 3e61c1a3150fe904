//! PCBC (crypto/pcbc.c): C_i = E(P_i ^ V_i), V_{i+1} = P_i ^ C_i, V_0 = IV.

use super::{Mode, xor_in_place};
use crate::cipher::BlockCipher;

pub(super) struct Pcbc(pub(super) Box<dyn BlockCipher>);

impl Mode for Pcbc {
    super::block_mode_sizes!();
    fn encrypt(&self, iv: &mut [u8], data: &mut [u8]) {
        let bs = self.0.block_size();
        let mut v = [0u8; 16];
        v[..bs].copy_from_slice(&iv[..bs]);
        for block in data.chunks_exact_mut(bs) {
            let mut p = [0u8; 16];
            p[..bs].copy_from_slice(block);
            xor_in_place(block, &v[..bs]);
            self.0.encrypt_blocks(block);
            v[..bs].copy_from_slice(&p[..bs]);
            xor_in_place(&mut v[..bs], block);
        }
    }
    fn decrypt(&self, iv: &mut [u8], data: &mut [u8]) {
        let bs = self.0.block_size();
        let mut v = [0u8; 16];
        v[..bs].copy_from_slice(&iv[..bs]);
        for block in data.chunks_exact_mut(bs) {
            let mut c = [0u8; 16];
            c[..bs].copy_from_slice(block);
            self.0.decrypt_blocks(block);
            xor_in_place(block, &v[..bs]);
            v[..bs].copy_from_slice(&c[..bs]);
            xor_in_place(&mut v[..bs], block);
        }
    }
}
