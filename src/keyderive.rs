//! Passphrase and key file to volume key, exactly as cryptsetup's plain mode
//! (lib/crypt_plain.c, lib/setup.c) and hashalot: the key is
//! H(p) | H("A" | p) | H("AA" | p) | ... truncated to the key size; `hash:N`
//! hashes into N bytes only and zero-pads the rest; `plain` copies the
//! passphrase (zero-padded or truncated), `plain:N` exactly N bytes of it.
//! A real key file is used raw (the hash is ignored) and must hold the key.
//!
//! Hash names here are userspace ones (ripemd160, whirlpool, stribog512), as
//! cryptsetup takes them, unlike ESSIV's kernel names.

use crate::error::{Error, Result};
use digest::Digest;
use std::io::Read;
use zeroize::Zeroizing;

#[derive(Clone, Debug, PartialEq, Eq)]
/// How a passphrase becomes key material (`-h`): `plain[:N]` or `HASH[:N]`.
pub enum HashSpec {
    /// No hash; with `Some(n)`, exactly n passphrase bytes.
    Plain(Option<usize>),
    /// A hash, into `Some(n)` bytes of the key (the rest zero) or all of it.
    Hash(&'static str, Option<usize>),
}

type HashFn = fn(&[u8]) -> Vec<u8>;

fn h<D: Digest>(d: &[u8]) -> Vec<u8> {
    D::digest(d).to_vec()
}

const HASHES: &[(&str, HashFn)] = &[
    ("ripemd160", h::<ripemd::Ripemd160>),
    ("sha1", h::<sha1::Sha1>),
    ("sha224", h::<sha2::Sha224>),
    ("sha256", h::<sha2::Sha256>),
    ("sha384", h::<sha2::Sha384>),
    ("sha512", h::<sha2::Sha512>),
    ("whirlpool", h::<whirlpool::Whirlpool>),
    ("sha3-224", h::<sha3::Sha3_224>),
    ("sha3-256", h::<sha3::Sha3_256>),
    ("sha3-384", h::<sha3::Sha3_384>),
    ("sha3-512", h::<sha3::Sha3_512>),
    ("sm3", h::<sm3::Sm3>),
    ("stribog512", h::<streebog::Streebog512>),
    ("md5", h::<md5::Md5>),
];

fn hash_fn(name: &str) -> Option<HashFn> {
    HASHES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

impl HashSpec {
    /// `plain`, `plain:N`, `<hash>` or `<hash>:N`.
    pub fn parse(s: &str) -> Result<Self> {
        let err = |why: String| Error::Key(format!("hash '{s}': {why}"));
        let (name, limit) = match s.split_once(':') {
            None => (s, None),
            Some((n, l)) => {
                let v: usize = l
                    .parse()
                    .map_err(|_| err(format!("'{l}' after ':' is not a byte count")))?;
                (n, Some(v))
            }
        };
        if name == "plain" {
            return Ok(HashSpec::Plain(limit));
        }
        let (known, _) = HASHES.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            err(format!(
                "unknown hash (known: plain, {})",
                HASHES.iter().map(|h| h.0).collect::<Vec<_>>().join(", ")
            ))
        })?;
        Ok(HashSpec::Hash(known, limit))
    }
}

fn check_key_size(key_size: usize) -> Result<()> {
    if key_size > crate::key::MAX_KEY_BYTES {
        return Err(Error::Key(format!(
            "a {key_size}-byte key is over the {} bytes any dm-crypt key needs",
            crate::key::MAX_KEY_BYTES
        )));
    }
    Ok(())
}

/// Turn passphrase bytes into a key of `key_size` bytes.
pub fn passphrase_to_key(
    spec: &HashSpec,
    pass: &[u8],
    key_size: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    check_key_size(key_size)?;
    let mut key = Zeroizing::new(vec![0u8; key_size]);
    match spec {
        HashSpec::Plain(None) => {
            let n = pass.len().min(key_size);
            key[..n].copy_from_slice(&pass[..n]);
        }
        HashSpec::Plain(Some(n)) => {
            if *n > key_size {
                return Err(Error::Key(format!(
                    "plain:{n} is longer than the {key_size}-byte key"
                )));
            }
            if pass.len() < *n {
                return Err(Error::Key(format!(
                    "plain:{n} needs {n} passphrase bytes, got {}",
                    pass.len()
                )));
            }
            key[..*n].copy_from_slice(&pass[..*n]);
        }
        HashSpec::Hash(name, limit) => {
            let len = limit.unwrap_or(key_size);
            if len > key_size {
                return Err(Error::Key(format!(
                    "{name}:{len} is longer than the {key_size}-byte key"
                )));
            }
            let f = hash_fn(name).expect("parsed names exist");
            let mut at = 0;
            let mut round = 0;
            while at < len {
                let mut input = Zeroizing::new(Vec::with_capacity(round + pass.len()));
                input.extend(std::iter::repeat_n(b'A', round));
                input.extend_from_slice(pass);
                let d = Zeroizing::new(f(&input));
                let n = d.len().min(len - at);
                key[at..at + n].copy_from_slice(&d[..n]);
                at += n;
                round += 1;
            }
        }
    }
    Ok(key)
}

/// Where the key material comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Typed or piped passphrase: read up to the first newline, then hashed.
    Passphrase,
    /// `-d -`: binary from stdin, hashed (for `plain`, exactly key_size bytes).
    KeyFileStdin,
    /// `-d FILE`: raw, never hashed, exactly key_size bytes.
    KeyFile,
}

/// cryptsetup's default cap on key material read from a file or a pipe.
pub const KEYFILE_MAX: usize = 8 << 20;

/// cryptsetup's cap on a passphrase typed at a terminal.
pub const TERMINAL_PASSPHRASE_MAX: usize = 512;

/// Read limits, as --keyfile-offset and --keyfile-size (0 = no limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of key material skipped first (`--keyfile-offset`).
    pub offset: u64,
    /// Bytes of key material read at most (`--keyfile-size`; 0: no limit).
    pub size: usize,
}

/// Derive the key from a reader, by cryptsetup's read rules for `source`.
pub fn derive(
    source: &Source,
    spec: &HashSpec,
    input: &mut dyn Read,
    limits: Limits,
    key_size: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    check_key_size(key_size)?;
    let io = |e: std::io::Error| Error::Key(format!("reading the key material: {e}"));
    // Skip the offset.
    std::io::copy(&mut input.take(limits.offset), &mut std::io::sink()).map_err(io)?;
    match source {
        Source::KeyFile => {
            let mut key = Zeroizing::new(vec![0u8; key_size]);
            let mut got = 0;
            while got < key_size {
                match input.read(&mut key[got..]).map_err(io)? {
                    0 => break,
                    n => got += n,
                }
            }
            if got < key_size {
                return Err(Error::Key(format!(
                    "key file holds {got} bytes after the offset; the key needs {key_size}"
                )));
            }
            Ok(key)
        }
        Source::KeyFileStdin => {
            let cap = match spec {
                HashSpec::Plain(_) => key_size,
                _ if limits.size > 0 => limits.size,
                _ => KEYFILE_MAX,
            };
            let mut data = Zeroizing::new(Vec::new());
            // One byte past the cap tells a file over the limit from one at it.
            input
                .take(cap as u64 + 1)
                .read_to_end(&mut data)
                .map_err(io)?;
            if data.len() > cap {
                if limits.size > 0 || matches!(spec, HashSpec::Plain(_)) {
                    data.truncate(cap);
                } else {
                    return Err(Error::Key(format!(
                        "the key material is over {} MiB, cryptsetup's limit (give --keyfile-size)",
                        KEYFILE_MAX >> 20
                    )));
                }
            }
            passphrase_to_key(spec, &data, key_size)
        }
        Source::Passphrase => {
            let cap = if limits.size > 0 {
                limits.size
            } else {
                KEYFILE_MAX
            };
            let mut data = Zeroizing::new(Vec::new());
            let mut byte = [0u8; 1];
            while data.len() < cap {
                if input.read(&mut byte).map_err(io)? == 0 || byte[0] == b'\n' {
                    break;
                }
                data.push(byte[0]);
            }
            passphrase_to_key(spec, &data, key_size)
        }
    }
}

/// How a LUKS passphrase arrives (cryptsetup's rules; nothing is hashed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Material {
    /// A key file (`--key-file FILE|-`): every byte, up to the limit.
    KeyFile,
    /// A passphrase piped on standard input: up to the first newline.
    Passphrase,
}

/// Read a LUKS passphrase or key file from `input` by cryptsetup's rules:
/// `limits.offset` bytes skipped, at most `limits.size` bytes (a key file
/// over 8 MiB without a size is refused), a piped passphrase cut at its
/// first newline.
pub fn read_material(
    kind: Material,
    input: &mut dyn Read,
    limits: Limits,
) -> Result<Zeroizing<Vec<u8>>> {
    let io = |e: std::io::Error| Error::Key(format!("reading the passphrase: {e}"));
    std::io::copy(&mut input.take(limits.offset), &mut std::io::sink()).map_err(io)?;
    let cap = if limits.size > 0 {
        limits.size
    } else {
        KEYFILE_MAX
    };
    let mut data = Zeroizing::new(Vec::new());
    match kind {
        Material::KeyFile => {
            input
                .take(cap as u64 + 1)
                .read_to_end(&mut data)
                .map_err(io)?;
            if data.len() > cap {
                if limits.size > 0 {
                    data.truncate(cap);
                } else {
                    return Err(Error::Key(format!(
                        "the key file is over {} MiB, cryptsetup's limit (give --keyfile-size)",
                        KEYFILE_MAX >> 20
                    )));
                }
            }
        }
        Material::Passphrase => {
            let mut byte = [0u8; 1];
            while data.len() < cap {
                if input.read(&mut byte).map_err(io)? == 0 || byte[0] == b'\n' {
                    break;
                }
                data.push(byte[0]);
            }
        }
    }
    Ok(data)
}
