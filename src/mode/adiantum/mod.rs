//! Adiantum (Crowley & Biggers, 2018), as the kernel's adiantum template:
//! a wide-block mode over the whole sector from XChaCha12/20, AES-256 on one
//! 16-byte block, and an NH + Poly1305 hash. The 32-byte IV is the tweak.
//!
//! With P = P_L | P_R (P_R the last 16 bytes) and H(T, X) = Poly1305_KT(
//! le64(|X| * 8) | 0^8 | T) + NHPoly1305_KM(X) (mod 2^128, little-endian):
//! P_M = P_R + H(T, P_L); C_M = E_K(P_M); C_L = P_L ^ XChaCha(K, C_M | 1);
//! C_R = C_M - H(T, C_L). Subkeys K_E, K_T, K_M come from XChaCha(K, 1 | 0...).
//! The Poly1305 used here is the bare evaluation (no final "+ s").

mod nh;
mod poly1305;

use super::Mode;
use crate::cipher::BlockCipher;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::{XChaCha12, XChaCha20};
use nh::{KEY_WORDS as NH_KEY_WORDS, MESSAGE_BYTES as NH_MESSAGE_BYTES, nh};
use zeroize::Zeroizing;

pub(super) const TWEAK_SIZE: usize = 32;
const DERIVED: usize = 32 + 16 + 16 + NH_KEY_WORDS * 4;

pub(super) struct Adiantum {
    rounds: u8,
    key: Zeroizing<[u8; 32]>,
    block: Box<dyn BlockCipher>,
    header_key: poly1305::Key,
    poly_key: poly1305::Key,
    nh_key: Zeroizing<[u32; NH_KEY_WORDS]>,
}

fn xchacha(rounds: u8, key: &[u8; 32], nonce: &[u8; 24], data: &mut [u8]) {
    match rounds {
        12 => XChaCha12::new(key.into(), nonce.into()).apply_keystream(data),
        _ => XChaCha20::new(key.into(), nonce.into()).apply_keystream(data),
    }
}

impl Adiantum {
    pub(super) fn new(
        rounds: u8,
        key: &[u8],
        keyed: impl Fn(&[u8]) -> Box<dyn BlockCipher>,
    ) -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(key);
        let mut derived = Zeroizing::new([0u8; DERIVED]);
        let mut nonce = [0u8; 24];
        nonce[0] = 1;
        xchacha(rounds, &k, &nonce, &mut derived[..]);
        let header_key = poly1305::Key::new(derived[32..48].try_into().unwrap());
        let poly_key = poly1305::Key::new(derived[48..64].try_into().unwrap());
        let mut nh_key = Zeroizing::new([0u32; NH_KEY_WORDS]);
        for (w, c) in nh_key.iter_mut().zip(derived[64..].chunks_exact(4)) {
            *w = u32::from_le_bytes(c.try_into().unwrap());
        }
        Adiantum {
            rounds,
            block: keyed(&derived[..32]),
            key: k,
            header_key,
            poly_key,
            nh_key,
        }
    }

    /// H(T, X) as a little-endian 128-bit number.
    fn hash(&self, tweak: &[u8], msg: &[u8]) -> u128 {
        let mut header = [0u8; 16 + TWEAK_SIZE];
        header[..8].copy_from_slice(&(msg.len() as u64 * 8).to_le_bytes());
        header[16..].copy_from_slice(&tweak[..TWEAK_SIZE]);
        let h = self.header_key.eval(&header);

        let mut m = poly1305::State::default();
        for chunk in msg.chunks(NH_MESSAGE_BYTES) {
            let out = if chunk.len() % 16 == 0 {
                nh(&self.nh_key, chunk)
            } else {
                // The last chunk is zero-padded to whole 16-byte units.
                let mut pad = [0u8; NH_MESSAGE_BYTES];
                pad[..chunk.len()].copy_from_slice(chunk);
                nh(&self.nh_key, &pad[..chunk.len().div_ceil(16) * 16])
            };
            self.poly_key.update(&mut m, &out);
        }
        h.wrapping_add(m.finish())
    }

    fn stream(&self, c_m: &[u8; 16], data: &mut [u8]) {
        let mut nonce = [0u8; 24];
        nonce[..16].copy_from_slice(c_m);
        nonce[16] = 1;
        xchacha(self.rounds, &self.key, &nonce, data);
    }
}

impl Mode for Adiantum {
    fn iv_size(&self) -> usize {
        TWEAK_SIZE
    }
    fn block_size(&self) -> usize {
        16
    }
    fn valid_len(&self, len: usize) -> bool {
        len >= 16
    }

    fn encrypt(&self, iv: &mut [u8], data: &mut [u8]) {
        let n = data.len() - 16;
        let (left, right) = data.split_at_mut(n);
        let p_r = u128::from_le_bytes((&*right).try_into().unwrap());
        let mut c_m = p_r.wrapping_add(self.hash(iv, left)).to_le_bytes();
        self.block.encrypt_blocks(&mut c_m);
        self.stream(&c_m, left);
        let c_r = u128::from_le_bytes(c_m).wrapping_sub(self.hash(iv, left));
        right.copy_from_slice(&c_r.to_le_bytes());
    }

    fn decrypt(&self, iv: &mut [u8], data: &mut [u8]) {
        let n = data.len() - 16;
        let (left, right) = data.split_at_mut(n);
        let c_r = u128::from_le_bytes((&*right).try_into().unwrap());
        let c_m = c_r.wrapping_add(self.hash(iv, left)).to_le_bytes();
        self.stream(&c_m, left);
        let mut p_m = c_m;
        self.block.decrypt_blocks(&mut p_m);
        let p_r = u128::from_le_bytes(p_m).wrapping_sub(self.hash(iv, left));
        right.copy_from_slice(&p_r.to_le_bytes());
    }
}
