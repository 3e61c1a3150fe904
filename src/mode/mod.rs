//! Chaining modes: one file per mode, like RustCrypto's block-modes.
//!
//! A mode is resolved from names first ([`resolve`], no key needed, so a bad
//! spec is refused before any key is looked at), then keyed per instance.
//! `encrypt`/`decrypt` work in place on a whole request (a dm-crypt sector,
//! or one known-answer vector) and update nothing but `data`; the IV buffer
//! may be used as scratch.

mod adiantum;
mod cbc;
mod cfb;
mod ctr;
mod ecb;
mod lrw;
mod ofb;
mod pcbc;
mod xts;

use crate::cipher::{self, BlockCipher, CipherInfo, Direction};

/// A keyed chaining mode, the counterpart of one kernel skcipher tfm.
pub trait Mode: Send + Sync {
    /// IV size in bytes the mode consumes (0 for ecb).
    fn iv_size(&self) -> usize;
    /// The crypto API block size (the cipher's for ecb/cbc, 16 for xts).
    fn block_size(&self) -> usize;
    /// Whether a request of `len` bytes is valid for this mode.
    fn valid_len(&self, len: usize) -> bool;
    /// The two algorithms of the mode (they differ for cbc, pcbc, cfb,
    /// adiantum); callers pass a [`Direction`] to [`Mode::crypt`].
    fn encrypt(&self, iv: &mut [u8], data: &mut [u8]);
    /// Decrypt one request in place (see [`Mode::encrypt`]).
    fn decrypt(&self, iv: &mut [u8], data: &mut [u8]);

    /// One request in direction `dir`.
    fn crypt(&self, iv: &mut [u8], data: &mut [u8], dir: Direction) {
        match dir {
            Direction::Encrypt => self.encrypt(iv, data),
            Direction::Decrypt => self.decrypt(iv, data),
        }
    }

    /// Consecutive sectors of `sector` bytes, each with its own IV (`ivs`
    /// holds them back to back; it is scratch afterwards). Modes that are
    /// serial per sector override this to interleave sectors.
    fn crypt_sectors(&self, ivs: &mut [u8], data: &mut [u8], sector: usize, dir: Direction) {
        let n = ivs.len() / (data.len() / sector).max(1);
        for (k, unit) in data.chunks_exact_mut(sector).enumerate() {
            self.crypt(&mut ivs[k * n..(k + 1) * n], unit, dir);
        }
    }
}

/// Sectors the engine hands a mode at once (see `Mode::crypt_sectors`).
pub const LANES: usize = 16;

/// A mode and cipher resolved by name, not yet keyed.
#[derive(Clone, Copy)]
pub struct Template {
    /// The chaining mode.
    pub chain: Chain,
    /// The block cipher, from the registry.
    pub cipher: &'static CipherInfo,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// The chaining modes dm-crypt specs can name.
pub enum Chain {
    /// Electronic codebook (no IV).
    Ecb,
    /// Cipher block chaining.
    Cbc,
    /// XEX with ciphertext stealing (IEEE 1619).
    Xts,
    /// Liskov-Rivest-Wagner (tweak key after the cipher key).
    Lrw,
    /// Counter mode (a stream).
    Ctr,
    /// Output feedback (gone after 6.6).
    Ofb,
    /// Cipher feedback (gone after 6.6).
    Cfb,
    /// Propagating CBC.
    Pcbc,
    /// Adiantum with XChaCha of this many rounds (12 or 20).
    Adiantum(u8),
}

impl Chain {
    /// The crypto API template name (`cbc`, `xts`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Chain::Ecb => "ecb",
            Chain::Cbc => "cbc",
            Chain::Xts => "xts",
            Chain::Lrw => "lrw",
            Chain::Ctr => "ctr",
            Chain::Ofb => "ofb",
            Chain::Cfb => "cfb",
            Chain::Pcbc => "pcbc",
            Chain::Adiantum(_) => "adiantum",
        }
    }
}

/// Resolve `chain(cipher)` as the kernel's crypto API would instantiate it.
pub fn resolve(chain: &str, cipher_name: &str) -> Result<Template, String> {
    // adiantum(<stream cipher>,<block cipher>) names two ciphers.
    let (stream, cipher_name) = match cipher_name.split_once(',') {
        Some((s, c)) if chain == "adiantum" => (Some(s), c),
        Some(_) => return Err(format!("{chain}({cipher_name}) takes one cipher")),
        None => (None, cipher_name),
    };
    let cipher = cipher::lookup(cipher_name).ok_or_else(|| {
        format!(
            "unknown block cipher '{cipher_name}' (known: {})",
            cipher::names().collect::<Vec<_>>().join(", ")
        )
    })?;
    let chain = match (chain, stream) {
        ("ecb", _) => Chain::Ecb,
        ("cbc", _) => Chain::Cbc,
        ("xts", _) => Chain::Xts,
        ("lrw", _) => Chain::Lrw,
        ("ctr", _) => Chain::Ctr,
        ("ofb", _) => Chain::Ofb,
        ("cfb", _) => Chain::Cfb,
        ("pcbc", _) => Chain::Pcbc,
        ("adiantum", Some("xchacha12")) => Chain::Adiantum(12),
        ("adiantum", Some("xchacha20")) => Chain::Adiantum(20),
        ("adiantum", Some(s)) => {
            return Err(format!(
                "adiantum needs xchacha12 or xchacha20 as its stream cipher, not '{s}'"
            ));
        }
        ("adiantum", None) => {
            return Err("adiantum names two ciphers: adiantum(xchacha12,aes)".into());
        }
        (other, _) => {
            return Err(format!(
                "unknown chaining mode '{other}' (known: ecb, cbc, pcbc, ctr, cfb, ofb, xts, lrw, adiantum)"
            ));
        }
    };
    if cipher.name == "cipher_null" && chain != Chain::Ecb {
        return Err("cipher_null is only used as ecb(cipher_null)".into());
    }
    // xts, lrw and adiantum are defined over 16-byte blocks only.
    if matches!(chain, Chain::Xts | Chain::Lrw | Chain::Adiantum(_)) && cipher.block_size != 16 {
        return Err(format!(
            "{} needs a 16-byte block cipher; {} has {}-byte blocks",
            chain.name(),
            cipher.name,
            cipher.block_size
        ));
    }
    if matches!(chain, Chain::Adiantum(_)) && !cipher.accepts_key_len(32) {
        return Err(format!(
            "adiantum keys its block cipher with 32 bytes, which {} does not take",
            cipher.name
        ));
    }
    Ok(Template { chain, cipher })
}

impl Template {
    /// The kernel crypto API name, e.g. `cbc(aes)`.
    pub fn api_name(&self) -> String {
        match self.chain {
            Chain::Adiantum(r) => format!("adiantum(xchacha{r},{})", self.cipher.name),
            c => format!("{}({})", c.name(), self.cipher.name),
        }
    }

    /// IV size in bytes this mode and cipher take.
    pub fn iv_size(&self) -> usize {
        match self.chain {
            Chain::Ecb => 0,
            Chain::Cbc | Chain::Pcbc | Chain::Ctr | Chain::Ofb | Chain::Cfb => {
                self.cipher.block_size
            }
            Chain::Xts | Chain::Lrw => 16,
            Chain::Adiantum(_) => adiantum::TWEAK_SIZE,
        }
    }

    /// The crypto API block size: 1 for the stream modes (ctr, cfb, ofb).
    pub fn block_size(&self) -> usize {
        match self.chain {
            Chain::Ctr | Chain::Ofb | Chain::Cfb => 1,
            _ => self.cipher.block_size,
        }
    }

    /// Describe the accepted key lengths for error messages.
    pub fn key_sizes(&self) -> String {
        match self.chain {
            Chain::Xts => format!("twice ({}) for xts", self.cipher.key_sizes),
            Chain::Lrw => format!("{} plus 16 tweak-key bytes for lrw", self.cipher.key_sizes),
            Chain::Adiantum(_) => "32 bytes".into(),
            _ => self.cipher.key_sizes.to_string(),
        }
    }

    /// Whether `setkey` of this tfm accepts `len` bytes.
    pub fn accepts_key_len(&self, len: usize) -> bool {
        match self.chain {
            Chain::Xts => len.is_multiple_of(2) && self.cipher.accepts_key_len(len / 2),
            Chain::Lrw => len >= 16 && self.cipher.accepts_key_len(len - 16),
            Chain::Adiantum(_) => len == 32,
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
            Chain::Pcbc => Box::new(pcbc::Pcbc(keyed(key))),
            Chain::Ctr => Box::new(ctr::Ctr(keyed(key))),
            Chain::Ofb => Box::new(ofb::Ofb(keyed(key))),
            Chain::Cfb => Box::new(cfb::Cfb(keyed(key))),
            Chain::Xts => {
                let (k1, k2) = key.split_at(key.len() / 2);
                Box::new(xts::Xts {
                    data: keyed(k1),
                    tweak: keyed(k2),
                })
            }
            Chain::Lrw => {
                let (k1, k2) = key.split_at(key.len() - 16);
                Box::new(lrw::Lrw::new(keyed(k1), k2))
            }
            Chain::Adiantum(rounds) => Box::new(adiantum::Adiantum::new(rounds, key, |k| keyed(k))),
        })
    }
}

/// The sizes shared by the stream modes (ctr, cfb, ofb) over a block
/// cipher held in `.0`: IV of one cipher block, any length, block size 1.
macro_rules! stream_mode_sizes {
    () => {
        fn iv_size(&self) -> usize {
            self.0.block_size()
        }
        fn block_size(&self) -> usize {
            1
        }
        fn valid_len(&self, _: usize) -> bool {
            true
        }
    };
}
use stream_mode_sizes;

/// The sizes shared by the block modes chained per block (cbc, pcbc) over a
/// block cipher held in `.0`: IV and block of one cipher block.
macro_rules! block_mode_sizes {
    () => {
        fn iv_size(&self) -> usize {
            self.0.block_size()
        }
        fn block_size(&self) -> usize {
            self.0.block_size()
        }
        fn valid_len(&self, len: usize) -> bool {
            len.is_multiple_of(self.0.block_size())
        }
    };
}
use block_mode_sizes;

/// XOR with the tweaks, run the cipher over the chunk, XOR again: the core
/// of the tweakable modes (xts, lrw).
fn whitened(cipher: &dyn BlockCipher, tweaks: &[u8], data: &mut [u8], dir: Direction) {
    if cipher.xex_blocks(data, tweaks, dir) {
        return;
    }
    xor_in_place(data, tweaks);
    cipher.crypt_blocks(data, dir);
    xor_in_place(data, tweaks);
}

/// Largest chunk a mode processes with its stack scratch buffer.
const CHUNK: usize = 4096;

/// dst ^= src over the shorter length; 16 bytes at a time where it can.
fn xor_in_place(dst: &mut [u8], src: &[u8]) {
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    let mut d16 = dst.chunks_exact_mut(16);
    let mut s16 = src.chunks_exact(16);
    for (d, s) in (&mut d16).zip(&mut s16) {
        let v = u128::from_ne_bytes((&*d).try_into().unwrap())
            ^ u128::from_ne_bytes(s.try_into().unwrap());
        d.copy_from_slice(&v.to_ne_bytes());
    }
    for (d, s) in d16.into_remainder().iter_mut().zip(s16.remainder()) {
        *d ^= s;
    }
}
