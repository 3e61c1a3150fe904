//! ECB: every block on its own. No IV.

use super::Mode;
use crate::cipher::BlockCipher;

pub(super) struct Ecb(pub(super) Box<dyn BlockCipher>);

impl Mode for Ecb {
    fn iv_size(&self) -> usize {
        0
    }
    fn block_size(&self) -> usize {
        self.0.block_size()
    }
    fn valid_len(&self, len: usize) -> bool {
        len.is_multiple_of(self.0.block_size())
    }
    fn encrypt(&self, _iv: &mut [u8], data: &mut [u8]) {
        self.0.encrypt_blocks(data);
    }
    fn decrypt(&self, _iv: &mut [u8], data: &mut [u8]) {
        self.0.decrypt_blocks(data);
    }
}
