//! CTR (crypto/ctr.c): keystream E(counter), the counter being the IV as a
//! big-endian number over the whole block, incremented per block. A stream
//! mode: any length.

use super::{CHUNK, Mode, xor_in_place};
use crate::cipher::BlockCipher;

pub(super) struct Ctr(pub(super) Box<dyn BlockCipher>);

/// Big-endian increment of the whole block, as crypto_inc().
fn increment(c: &mut [u8]) {
    for b in c.iter_mut().rev() {
        *b = b.wrapping_add(1);
        if *b != 0 {
            break;
        }
    }
}

impl Mode for Ctr {
    super::stream_mode_sizes!();
    fn encrypt(&self, iv: &mut [u8], data: &mut [u8]) {
        let bs = self.0.block_size();
        let mut counter = [0u8; 16];
        counter[..bs].copy_from_slice(&iv[..bs]);
        let mut stream = [0u8; CHUNK];
        for chunk in data.chunks_mut(CHUNK) {
            let n = chunk.len().div_ceil(bs) * bs;
            for ks in stream[..n].chunks_exact_mut(bs) {
                ks.copy_from_slice(&counter[..bs]);
                increment(&mut counter[..bs]);
            }
            self.0.encrypt_blocks(&mut stream[..n]);
            xor_in_place(chunk, &stream[..chunk.len()]);
        }
    }
    fn decrypt(&self, iv: &mut [u8], data: &mut [u8]) {
        self.encrypt(iv, data);
    }
}
