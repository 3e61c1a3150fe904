//! Chaining modes: one file per mode, like RustCrypto's block-modes.
//!
//! A mode is resolved from names first ([`resolve`], no key needed, so a bad
//! spec is refused before any key is looked at), then keyed per instance.
//! `encrypt`/`decrypt` work in place on a whole request (a dm-crypt sector,
//! or one known-answer vector) and update nothing but `data`; the IV buffer
//! may be used as scratch.

mod cbc;
mod ecb;
mod xts;

use crate::cipher::{self, BlockCipher, CipherInfo};

/// A keyed chaining mode, the counterpart of one kernel skcipher tfm.
pub trait Mode: Send + Sync {
    /// IV size in bytes the mode consumes (0 for ecb).
    fn iv_size(&self) -> usize;
    /// The crypto API block size (the cipher's for ecb/cbc, 16 for xts).
    fn block_size(&self) -> usize;
    /// Whether a request of `len` bytes is valid for this mode.
    fn valid_len(&self, len: usize) -> bool;
    fn encrypt(&self, iv: &mut [u8], data: &mut [u8]);
    fn decrypt(&self, iv: &mut [u8], data: &mut [u8]);
}

/// A mode and cipher resolved by name, not yet keyed.
#[derive(Clone, Copy)]
pub struct Template {
    pub chain: Chain,
    pub cipher: &'static CipherInfo,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chain {
    Ecb,
    Cbc,
    Xts,
}

impl Chain {
    pub fn name(self) -> &'static str {
        match self {
            Chain::Ecb => "ecb",
            Chain::Cbc => "cbc",
            Chain::Xts => "xts",
        }
    }
}

/// Resolve `chain(cipher)` as the kernel's crypto API would instantiate it.
pub fn resolve(chain: &str, cipher_name: &str) -> Result<Template, String> {
    let cipher = cipher::lookup(cipher_name).ok_or_else(|| {
        format!(
            "unknown block cipher '{cipher_name}' (known: {})",
            cipher::names().collect::<Vec<_>>().join(", ")
        )
    })?;
    let chain = match chain {
        "ecb" => Chain::Ecb,
        "cbc" => Chain::Cbc,
        "xts" => Chain::Xts,
        other => {
            return Err(format!(
                "unknown chaining mode '{other}' (known: ecb, cbc, xts)"
            ));
        }
    };
    if cipher.name == "cipher_null" && chain != Chain::Ecb {
        return Err("cipher_null is only used as ecb(cipher_null)".into());
    }
    // crypto/xts.c refuses to instantiate over anything but 16-byte blocks.
    if chain == Chain::Xts && cipher.block_size != 16 {
        return Err(format!(
            "xts needs a 16-byte block cipher; {} has {}-byte blocks",
            cipher.name, cipher.block_size
        ));
    }
    Ok(Template { chain, cipher })
}

impl Template {
    /// The kernel crypto API name, e.g. `cbc(aes)`.
    pub fn api_name(&self) -> String {
        format!("{}({})", self.chain.name(), self.cipher.name)
    }

    pub fn iv_size(&self) -> usize {
        match self.chain {
            Chain::Ecb => 0,
            Chain::Cbc => self.cipher.block_size,
            Chain::Xts => 16,
        }
    }

    pub fn block_size(&self) -> usize {
        match self.chain {
            Chain::Xts => 16,
            _ => self.cipher.block_size,
        }
    }

    /// Describe the accepted key lengths for error messages.
    pub fn key_sizes(&self) -> String {
        match self.chain {
            Chain::Xts => format!("twice ({}) for xts", self.cipher.key_sizes),
            _ => self.cipher.key_sizes.to_string(),
        }
    }

    /// Whether `setkey` of this tfm accepts `len` bytes.
    pub fn accepts_key_len(&self, len: usize) -> bool {
        match self.chain {
            Chain::Xts => len.is_multiple_of(2) && self.cipher.accepts_key_len(len / 2),
            _ => self.cipher.accepts_key_len(len),
        }
    }

    /// Key one instance. Errors name the accepted key lengths.
    pub fn instantiate(&self, key: &[u8]) -> Result<Box<dyn Mode>, String> {
        if !self.accepts_key_len(key.len()) {
            return Err(format!(
                "{} takes {}, got {} bytes",
                self.api_name(),
                self.key_sizes(),
                key.len()
            ));
        }
        let keyed = |k: &[u8]| -> Box<dyn BlockCipher> {
            self.cipher.new_keyed(k).expect("length checked above")
        };
        Ok(match self.chain {
            Chain::Ecb => Box::new(ecb::Ecb(keyed(key))),
            Chain::Cbc => Box::new(cbc::Cbc(keyed(key))),
            Chain::Xts => {
                let (k1, k2) = key.split_at(key.len() / 2);
                Box::new(xts::Xts {
                    data: keyed(k1),
                    tweak: keyed(k2),
                })
            }
        })
    }
}

/// Largest chunk a mode processes with its stack scratch buffer.
const CHUNK: usize = 4096;

fn xor_in_place(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= s;
    }
}
