//! Hash functions by kernel crypto-API name, for ESSIV salts (and vector
//! digests). Names are the kernel's: `rmd160`, not `ripemd160`; `wp512`, not
//! `whirlpool`. A userspace spelling gets a hint instead of silent acceptance,
//! because the kernel refuses it.

use digest::Digest;

/// A hash the kernel knows by name (ESSIV salts, vector digests).
pub struct HashInfo {
    /// The kernel's name, e.g. `sha256`, `rmd160`, `wp512`.
    pub name: &'static str,
    /// Digest size in bytes.
    pub digest_size: usize,
    run: fn(&[u8]) -> Vec<u8>,
}

impl HashInfo {
    /// The digest of `data`.
    pub fn digest(&self, data: &[u8]) -> Vec<u8> {
        (self.run)(data)
    }
}

fn run<D: Digest>(data: &[u8]) -> Vec<u8> {
    D::digest(data).to_vec()
}

/// Whirlpool truncated, as the kernel's wp384/wp256 are.
fn wp<const N: usize>(data: &[u8]) -> Vec<u8> {
    let mut d = run::<whirlpool::Whirlpool>(data);
    d.truncate(N);
    d
}

macro_rules! h {
    ($name:literal, $size:literal, $f:expr) => {
        HashInfo {
            name: $name,
            digest_size: $size,
            run: $f,
        }
    };
}

static HASHES: &[HashInfo] = &[
    h!("md4", 16, run::<md4::Md4>),
    h!("md5", 16, run::<md5::Md5>),
    h!("sha1", 20, run::<sha1::Sha1>),
    h!("sha224", 28, run::<sha2::Sha224>),
    h!("sha256", 32, run::<sha2::Sha256>),
    h!("sha384", 48, run::<sha2::Sha384>),
    h!("sha512", 64, run::<sha2::Sha512>),
    h!("sha3-224", 28, run::<sha3::Sha3_224>),
    h!("sha3-256", 32, run::<sha3::Sha3_256>),
    h!("sha3-384", 48, run::<sha3::Sha3_384>),
    h!("sha3-512", 64, run::<sha3::Sha3_512>),
    h!("rmd160", 20, run::<ripemd::Ripemd160>),
    h!("wp256", 32, wp::<32>),
    h!("wp384", 48, wp::<48>),
    h!("wp512", 64, wp::<64>),
    h!("sm3", 32, run::<sm3::Sm3>),
    h!("streebog256", 32, run::<streebog::Streebog256>),
    h!("streebog512", 64, run::<streebog::Streebog512>),
    h!(
        "blake2b-160",
        20,
        run::<blake2::Blake2b<digest::consts::U20>>
    ),
    h!(
        "blake2b-256",
        32,
        run::<blake2::Blake2b<digest::consts::U32>>
    ),
    h!(
        "blake2b-384",
        48,
        run::<blake2::Blake2b<digest::consts::U48>>
    ),
    h!(
        "blake2b-512",
        64,
        run::<blake2::Blake2b<digest::consts::U64>>
    ),
];

/// Find a hash by kernel name.
pub fn lookup(name: &str) -> Option<&'static HashInfo> {
    HASHES.iter().find(|h| h.name == name)
}

/// For an unknown name, the kernel spelling the user probably meant.
pub fn kernel_spelling(name: &str) -> Option<&'static str> {
    Some(match name {
        "ripemd160" => "rmd160",
        "whirlpool" => "wp512",
        "sha-256" => "sha256",
        "sha-1" => "sha1",
        "sha-512" => "sha512",
        "blake2b" => "blake2b-512",
        _ => return None,
    })
}

/// SHA-256, used for long expected outputs in vector files.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}
