//! Kernel algorithm names -> key rules and constructors.
//!
//! Key lengths are those the kernel's generic `setkey` accepts (crypto/*.c),
//! which is sometimes wider than what the crate takes directly: serpent takes
//! 0..=32 bytes and pads short keys itself; blowfish 4..=56; cast5 5..=16.

use super::BlockCipher;
use super::adapter::{Null, keyed};
use zeroize::Zeroizing;

/// What the registry knows about one kernel block cipher.
pub struct CipherInfo {
    /// Kernel name (`aes`, `des3_ede`, ...).
    pub name: &'static str,
    /// Block size in bytes (1 for cipher_null).
    pub block_size: usize,
    /// Human description of the accepted key lengths, for error messages.
    pub key_sizes: &'static str,
    accepts: fn(usize) -> bool,
    build: fn(&[u8]) -> Box<dyn BlockCipher>,
}

impl CipherInfo {
    /// Whether the kernel's setkey accepts a key of `len` bytes.
    pub fn accepts_key_len(&self, len: usize) -> bool {
        (self.accepts)(len)
    }

    /// Key a new instance; `None` when the kernel would refuse the key length.
    pub fn new_keyed(&self, key: &[u8]) -> Option<Box<dyn BlockCipher>> {
        self.accepts_key_len(key.len()).then(|| (self.build)(key))
    }
}

fn aes(key: &[u8]) -> Box<dyn BlockCipher> {
    Box::new(super::aes::Aes::new(key))
}

fn camellia(key: &[u8]) -> Box<dyn BlockCipher> {
    Box::new(super::camellia::Camellia::new(key))
}

fn aria(key: &[u8]) -> Box<dyn BlockCipher> {
    match key.len() {
        16 => keyed::<aria::Aria128>(key),
        24 => keyed::<aria::Aria192>(key),
        _ => keyed::<aria::Aria256>(key),
    }
}

/// Kernel serpent pads keys shorter than 32 bytes with one 0x01 byte and
/// zeros (crypto/serpent_generic.c); doing that here lets every length go
/// through the crate's 32-byte path.
fn serpent(key: &[u8]) -> Box<dyn BlockCipher> {
    let mut full = Zeroizing::new([0u8; 32]);
    full[..key.len()].copy_from_slice(key);
    if key.len() < 32 {
        full[key.len()] = 0x01;
    }
    Box::new(super::serpent::Serpent::new(&full))
}

fn null(_: &[u8]) -> Box<dyn BlockCipher> {
    Box::new(Null)
}

fn aes_len(n: usize) -> bool {
    matches!(n, 16 | 24 | 32)
}

static CIPHERS: &[CipherInfo] = &[
    CipherInfo {
        name: "aes",
        block_size: 16,
        key_sizes: "16, 24 or 32 bytes",
        accepts: aes_len,
        build: aes,
    },
    CipherInfo {
        name: "twofish",
        block_size: 16,
        key_sizes: "16, 24 or 32 bytes",
        accepts: aes_len,
        build: |k| Box::new(super::twofish::Twofish::new(k)),
    },
    CipherInfo {
        name: "serpent",
        block_size: 16,
        key_sizes: "0 to 32 bytes",
        accepts: |n| n <= 32,
        build: serpent,
    },
    CipherInfo {
        name: "camellia",
        block_size: 16,
        key_sizes: "16, 24 or 32 bytes",
        accepts: aes_len,
        build: camellia,
    },
    CipherInfo {
        name: "cast6",
        block_size: 16,
        key_sizes: "16, 20, 24, 28 or 32 bytes",
        accepts: |n| (16..=32).contains(&n) && n % 4 == 0,
        build: keyed::<cast6::Cast6>,
    },
    CipherInfo {
        name: "aria",
        block_size: 16,
        key_sizes: "16, 24 or 32 bytes",
        accepts: aes_len,
        build: aria,
    },
    CipherInfo {
        name: "sm4",
        block_size: 16,
        key_sizes: "16 bytes",
        accepts: |n| n == 16,
        build: keyed::<sm4::Sm4>,
    },
    CipherInfo {
        name: "des",
        block_size: 8,
        key_sizes: "8 bytes",
        accepts: |n| n == 8,
        build: |k| Box::new(super::des::Des::new(k)),
    },
    CipherInfo {
        name: "des3_ede",
        block_size: 8,
        key_sizes: "24 bytes",
        accepts: |n| n == 24,
        build: |k| Box::new(super::des::Des::new(k)),
    },
    CipherInfo {
        name: "blowfish",
        block_size: 8,
        key_sizes: "4 to 56 bytes",
        accepts: |n| (4..=56).contains(&n),
        build: |k| Box::new(super::blowfish::Blowfish::new(k)),
    },
    CipherInfo {
        name: "cast5",
        block_size: 8,
        key_sizes: "5 to 16 bytes",
        accepts: |n| (5..=16).contains(&n),
        build: |k| Box::new(super::cast5::Cast5::new(k)),
    },
    CipherInfo {
        name: "cipher_null",
        block_size: 1,
        key_sizes: "0 bytes (key '-')",
        accepts: |n| n == 0,
        build: null,
    },
];

/// Find a block cipher by its kernel name (exact, as the crypto API does).
pub fn lookup(name: &str) -> Option<&'static CipherInfo> {
    // The crypto API also resolves generic driver names (`aes-generic`),
    // which only the capi form can spell.
    let name = name.strip_suffix("-generic").unwrap_or(name);
    CIPHERS.iter().find(|c| c.name == name)
}

/// Every supported kernel cipher name.
pub fn names() -> impl Iterator<Item = &'static str> {
    CIPHERS.iter().map(|c| c.name)
}
