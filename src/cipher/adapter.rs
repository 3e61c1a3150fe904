//! Wraps any RustCrypto block cipher as a [`BlockCipher`].

use super::BlockCipher;
use cipher::array::Array;
use cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};

pub(super) struct RustCrypto<C>(C);

impl<C> BlockCipher for RustCrypto<C>
where
    C: BlockCipherEncrypt + BlockCipherDecrypt + Send + Sync,
{
    fn block_size(&self) -> usize {
        C::block_size()
    }

    fn encrypt_blocks(&self, data: &mut [u8]) {
        let (blocks, rest) = Array::slice_as_chunks_mut(data);
        debug_assert!(rest.is_empty(), "partial block handed to a block cipher");
        self.0.encrypt_blocks(blocks);
    }

    fn decrypt_blocks(&self, data: &mut [u8]) {
        let (blocks, rest) = Array::slice_as_chunks_mut(data);
        debug_assert!(rest.is_empty(), "partial block handed to a block cipher");
        self.0.decrypt_blocks(blocks);
    }
}

/// Key a RustCrypto cipher; the registry has checked the length already.
pub(super) fn keyed<C>(key: &[u8]) -> Box<dyn BlockCipher>
where
    C: KeyInit + BlockCipherEncrypt + BlockCipherDecrypt + Send + Sync + 'static,
{
    Box::new(RustCrypto(
        C::new_from_slice(key).expect("key length checked by the registry"),
    ))
}

/// The kernel's `cipher_null`: identity, block size 1, empty key.
pub(super) struct Null;

impl BlockCipher for Null {
    fn block_size(&self) -> usize {
        1
    }
    fn encrypt_blocks(&self, _: &mut [u8]) {}
    fn decrypt_blocks(&self, _: &mut [u8]) {}
}
