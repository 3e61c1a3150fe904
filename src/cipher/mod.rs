//! Block ciphers behind one object-safe trait.
//!
//! Modes hand a cipher many blocks per call (`encrypt_blocks`): per-block calls
//! into the RustCrypto crates are an order of magnitude slower (see docs/performance.md,
//! "Performance"). Optional hooks let a SIMD cipher fuse a mode's whitening
//! or chaining into its own loop; a mode falls back to its generic code when
//! a hook returns `false`. Where the crates were slow we have our own
//! implementations (aes, serpent, des, twofish, camellia, blowfish), each
//! tested against the crate it replaces, which stays as the fallback on CPUs
//! without the features used. The registry maps kernel algorithm names to
//! constructors and to the key lengths the kernel's `setkey` accepts.

mod adapter;
mod aes;
mod blowfish;
mod camellia;
mod cast5;
mod des;
mod registry;
mod serpent;
#[cfg(test)]
mod testing;
mod twofish;

pub use registry::{CipherInfo, lookup, names};

/// Which way data goes through a cipher, a mode, an IV generator and the
/// engine: one type from the command line down to the block cipher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Plaintext to ciphertext (a write).
    Encrypt,
    /// Ciphertext to plaintext (a read).
    Decrypt,
}

impl Direction {
    /// Whether this is [`Direction::Encrypt`].
    pub fn is_encrypt(self) -> bool {
        self == Direction::Encrypt
    }
}

/// A keyed block cipher working in place on whole blocks.
pub trait BlockCipher: Send + Sync {
    /// Block size in bytes (8 or 16; 1 for cipher_null).
    fn block_size(&self) -> usize;
    /// Encrypt `data` in place; its length is a multiple of the block size.
    fn encrypt_blocks(&self, data: &mut [u8]);
    /// Decrypt `data` in place; its length is a multiple of the block size.
    fn decrypt_blocks(&self, data: &mut [u8]);

    /// Encrypt or decrypt `data` in place, as `dir` says.
    fn crypt_blocks(&self, data: &mut [u8], dir: Direction) {
        match dir {
            Direction::Encrypt => self.encrypt_blocks(data),
            Direction::Decrypt => self.decrypt_blocks(data),
        }
    }

    /// Fused XEX step, `data[i] = E(data[i] ^ w[i]) ^ w[i]` (or with D), as
    /// XTS and LRW whiten blocks. `false`: no fused path, the mode does the
    /// three passes itself.
    fn xex_blocks(&self, _data: &mut [u8], _whitening: &[u8], _dir: Direction) -> bool {
        false
    }

    /// Fused XTS over whole blocks: whiten block i with `T * x^i` in
    /// GF(2^128) (T = `tweak`, little-endian), leaving `T * x^n` in `tweak`.
    /// `false`: no fused path, the mode computes the tweaks itself.
    fn xts_blocks(&self, _tweak: &mut [u8; 16], _data: &mut [u8], _dir: Direction) -> bool {
        false
    }

    /// Fused CBC encryption of whole blocks (serial: one sector alone),
    /// `chain` holding the previous ciphertext block in and the last one
    /// out. `false`: no fused path, the mode calls the cipher per block.
    fn cbc_encrypt_blocks(&self, _chain: &mut [u8], _data: &mut [u8]) -> bool {
        false
    }

    /// Fused CBC decryption of whole blocks, `chain` holding the previous
    /// ciphertext block in and the last one out. `false`: no fused path.
    fn cbc_decrypt_blocks(&self, _chain: &mut [u8], _data: &mut [u8]) -> bool {
        false
    }
}

/// Run `wide` over whole runs of `run_bytes` and `one` over each `bs`-byte
/// block left: the split the interleaved table-driven ciphers share.
fn interleaved(
    data: &mut [u8],
    run_bytes: usize,
    bs: usize,
    mut wide: impl FnMut(&mut [u8]),
    mut one: impl FnMut(&mut [u8]),
) {
    let mut runs = data.chunks_exact_mut(run_bytes);
    for r in &mut runs {
        wide(r);
    }
    for b in runs.into_remainder().chunks_exact_mut(bs) {
        one(b);
    }
}

/// Run `f` over groups of `G` bytes; a short last group goes through a
/// zero-padded buffer, wiped afterwards, so SIMD code sees whole groups.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn in_groups<const G: usize>(data: &mut [u8], mut f: impl FnMut(&mut [u8; G])) {
    let mut groups = data.chunks_exact_mut(G);
    for g in &mut groups {
        f(g.try_into().expect("chunks_exact gives whole groups"));
    }
    let rest = groups.into_remainder();
    if !rest.is_empty() {
        let mut buf = zeroize::Zeroizing::new([0u8; G]);
        buf[..rest.len()].copy_from_slice(rest);
        f(&mut buf);
        rest.copy_from_slice(&buf[..rest.len()]);
    }
}
