//! The key derivation functions LUKS key slots and digests name: PBKDF2
//! with the hashes cryptsetup accepts (by their userspace names: `sha256`,
//! `ripemd160`, `whirlpool`, ...), Argon2i and Argon2id (RFC 9106, version
//! 0x13). The hashes also serve the anti-forensic splitter.

use digest::Digest;
use zeroize::Zeroizing;

/// A hash by the name LUKS headers give it.
pub struct LuksHash {
    /// The name in the header (`sha256`, `ripemd160`, `whirlpool`).
    pub name: &'static str,
    /// Digest size in bytes.
    pub size: usize,
    digest: fn(&[&[u8]]) -> Vec<u8>,
    pbkdf2: fn(&[u8], &[u8], u32, &mut [u8]),
}

impl LuksHash {
    /// The digest of the concatenation of `parts`.
    pub fn digest(&self, parts: &[&[u8]]) -> Vec<u8> {
        (self.digest)(parts)
    }

    /// PBKDF2-HMAC with this hash (RFC 8018), filling `out`.
    pub fn pbkdf2(&self, password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
        (self.pbkdf2)(password, salt, iterations, out)
    }
}

fn digest_of<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
    let mut d = D::new();
    for p in parts {
        d.update(p);
    }
    d.finalize().to_vec()
}

fn pbkdf2_of<D: digest::block_api::EagerHash>(p: &[u8], s: &[u8], n: u32, out: &mut [u8]) {
    pbkdf2::pbkdf2_hmac::<D>(p, s, n, out)
}

/// HMAC without the eager-hash optimisation, for hashes that lack it (SHA-3).
fn pbkdf2_simple<D: Digest + digest::common::BlockSizeUser + Clone>(
    p: &[u8],
    s: &[u8],
    n: u32,
    out: &mut [u8],
) {
    pbkdf2::pbkdf2::<hmac::SimpleHmac<D>>(p, s, n, out).expect("HMAC takes any key length")
}

macro_rules! luks_hash {
    ($name:literal, $size:literal, $t:ty) => {
        luks_hash!($name, $size, $t, pbkdf2_of::<$t>)
    };
    ($name:literal, $size:literal, $t:ty, $pbkdf2:expr) => {
        LuksHash {
            name: $name,
            size: $size,
            digest: digest_of::<$t>,
            pbkdf2: $pbkdf2,
        }
    };
}

static HASHES: &[LuksHash] = &[
    luks_hash!("sha1", 20, sha1::Sha1),
    luks_hash!("sha224", 28, sha2::Sha224),
    luks_hash!("sha256", 32, sha2::Sha256),
    luks_hash!("sha384", 48, sha2::Sha384),
    luks_hash!("sha512", 64, sha2::Sha512),
    luks_hash!(
        "sha3-224",
        28,
        sha3::Sha3_224,
        pbkdf2_simple::<sha3::Sha3_224>
    ),
    luks_hash!(
        "sha3-256",
        32,
        sha3::Sha3_256,
        pbkdf2_simple::<sha3::Sha3_256>
    ),
    luks_hash!(
        "sha3-384",
        48,
        sha3::Sha3_384,
        pbkdf2_simple::<sha3::Sha3_384>
    ),
    luks_hash!(
        "sha3-512",
        64,
        sha3::Sha3_512,
        pbkdf2_simple::<sha3::Sha3_512>
    ),
    luks_hash!("ripemd160", 20, ripemd::Ripemd160),
    luks_hash!("whirlpool", 64, whirlpool::Whirlpool),
    luks_hash!("sm3", 32, sm3::Sm3),
    luks_hash!("stribog256", 32, streebog::Streebog256),
    luks_hash!("stribog512", 64, streebog::Streebog512),
];

/// The hash a LUKS header names, or why not.
pub fn hash(name: &str) -> Result<&'static LuksHash, String> {
    HASHES.iter().find(|h| h.name == name).ok_or_else(|| {
        format!(
            "hash '{name}' is not one LUKS names (known: {})",
            HASHES.iter().map(|h| h.name).collect::<Vec<_>>().join(", ")
        )
    })
}

/// cryptsetup's bounds on Argon2 costs: at most 4 GiB of memory
/// (4194304 KiB), at most 16 lanes... as it writes them; a header with
/// more is refused before any memory is taken.
pub const ARGON2_MAX_MEMORY_KIB: u32 = 4 << 20;
/// The most lanes a header may ask for.
pub const ARGON2_MAX_CPUS: u32 = 16;

/// A key derivation, with its costs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kdf {
    /// PBKDF2-HMAC over a hash.
    Pbkdf2 {
        /// The hash name.
        hash: String,
        /// Iterations.
        iterations: u32,
    },
    /// Argon2 (RFC 9106, version 0x13).
    Argon2 {
        /// Argon2id rather than Argon2i.
        id: bool,
        /// Passes over memory (time cost).
        time: u32,
        /// Memory in KiB.
        memory_kib: u32,
        /// Lanes (parallelism).
        cpus: u32,
    },
}

impl Kdf {
    /// The name LUKS2 metadata gives the type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kdf::Pbkdf2 { .. } => "pbkdf2",
            Kdf::Argon2 { id: true, .. } => "argon2id",
            Kdf::Argon2 { id: false, .. } => "argon2i",
        }
    }

    /// Whether the costs are ones dmch runs: a known hash, iterations and
    /// time at least 1, memory within `memory_limit_kib` (and Argon2's own
    /// minimum of 8 KiB per lane), lanes within cryptsetup's bound.
    pub fn check(&self, memory_limit_kib: u32) -> Result<(), String> {
        match self {
            Kdf::Pbkdf2 {
                hash: h,
                iterations,
            } => {
                hash(h)?;
                if *iterations == 0 {
                    return Err("PBKDF2 with 0 iterations".into());
                }
            }
            Kdf::Argon2 {
                time,
                memory_kib,
                cpus,
                ..
            } => {
                if *time == 0 {
                    return Err("Argon2 with a time cost of 0".into());
                }
                if *cpus == 0 || *cpus > ARGON2_MAX_CPUS {
                    return Err(format!("Argon2 with {cpus} lanes (1 to {ARGON2_MAX_CPUS})"));
                }
                if *memory_kib < 8 * cpus {
                    return Err(format!(
                        "Argon2 with {memory_kib} KiB for {cpus} lanes (at least 8 KiB a lane)"
                    ));
                }
                let limit = memory_limit_kib.min(ARGON2_MAX_MEMORY_KIB);
                if *memory_kib > limit {
                    return Err(format!(
                        "Argon2 asks for {memory_kib} KiB of memory, over the limit of {limit} KiB"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Derive `len` bytes from `password` and `salt`.
    pub fn derive(
        &self,
        password: &[u8],
        salt: &[u8],
        len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        let mut out = Zeroizing::new(vec![0u8; len]);
        match self {
            Kdf::Pbkdf2 {
                hash: h,
                iterations,
            } => hash(h)?.pbkdf2(password, salt, *iterations, &mut out),
            Kdf::Argon2 {
                id,
                time,
                memory_kib,
                cpus,
            } => argon2(
                *id,
                (*time, *memory_kib, *cpus),
                password,
                salt,
                b"",
                b"",
                &mut out,
            )?,
        }
        Ok(out)
    }
}

/// Argon2 version 0x13 with (time, memory KiB, lanes), an optional secret
/// and associated data (empty for LUKS), filling `out`.
pub fn argon2(
    id: bool,
    (time, memory_kib, cpus): (u32, u32, u32),
    password: &[u8],
    salt: &[u8],
    secret: &[u8],
    data: &[u8],
    out: &mut [u8],
) -> Result<(), String> {
    let bad = |e: argon2::Error| format!("Argon2: {e}");
    let data = argon2::AssociatedData::new(data).map_err(bad)?;
    let params = argon2::ParamsBuilder::new()
        .m_cost(memory_kib)
        .t_cost(time)
        .p_cost(cpus)
        .output_len(out.len())
        .data(data)
        .build()
        .map_err(bad)?;
    let alg = if id {
        argon2::Algorithm::Argon2id
    } else {
        argon2::Algorithm::Argon2i
    };
    let a = if secret.is_empty() {
        argon2::Argon2::new(alg, argon2::Version::V0x13, params)
    } else {
        argon2::Argon2::new_with_secret(secret, alg, argon2::Version::V0x13, params).map_err(bad)?
    };
    a.hash_password_into(password, salt, out).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pbkdf2(h: &str, p: &[u8], s: &[u8], n: u32, len: usize) -> String {
        let k = Kdf::Pbkdf2 {
            hash: h.into(),
            iterations: n,
        };
        hex::encode(&k.derive(p, s, len).unwrap()[..])
    }

    /// RFC 6070, PBKDF2-HMAC-SHA1 test vectors 1, 2, 3 and 5.
    #[test]
    fn pbkdf2_sha1_rfc_6070() {
        assert_eq!(
            pbkdf2("sha1", b"password", b"salt", 1, 20),
            "0c60c80f961f0e71f3a9b524af6012062fe037a6"
        );
        assert_eq!(
            pbkdf2("sha1", b"password", b"salt", 2, 20),
            "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"
        );
        assert_eq!(
            pbkdf2("sha1", b"password", b"salt", 4096, 20),
            "4b007901b765489abead49d926f721d065a429c1"
        );
        assert_eq!(
            pbkdf2(
                "sha1",
                b"passwordPASSWORDpassword",
                b"saltSALTsaltSALTsaltSALTsaltSALTsalt",
                4096,
                25
            ),
            "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038"
        );
    }

    /// RFC 3962 appendix B (PBKDF2-HMAC-SHA1 for Kerberos AES): iteration
    /// 1200 with the ATHENA.MIT.EDU salt, 32 bytes.
    #[test]
    fn pbkdf2_sha1_rfc_3962() {
        assert_eq!(
            pbkdf2("sha1", b"password", b"ATHENA.MIT.EDUraeburn", 1200, 32),
            "5c08eb61fdf71e4e4ec3cf6ba1f5512ba7e52ddbc5e5142f708a31e2e62b1e13"
        );
    }

    /// RFC 9106 sections 5.2 and 5.3: 32 KiB, 3 passes, 4 lanes, a 32-byte
    /// tag; password 32 x 0x01, salt 16 x 0x02, secret 8 x 0x03, associated
    /// data 12 x 0x04.
    #[test]
    fn argon2_rfc_9106() {
        let tag = |id: bool| {
            let mut out = [0u8; 32];
            argon2(
                id,
                (3, 32, 4),
                &[1; 32],
                &[2; 16],
                &[3; 8],
                &[4; 12],
                &mut out,
            )
            .unwrap();
            hex::encode(out)
        };
        assert_eq!(
            tag(false),
            "c814d9d1dc7f37aa13f0d77f2494bda1c8de6b016dd388d29952a4c4672b6ce8"
        );
        assert_eq!(
            tag(true),
            "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"
        );
    }

    #[test]
    fn every_hash_says_its_own_size() {
        for h in HASHES {
            assert_eq!(h.digest(&[b"x"]).len(), h.size, "{}", h.name);
            let mut out = [0u8; 7];
            h.pbkdf2(b"p", b"s", 2, &mut out);
            assert_ne!(out, [0; 7]);
        }
        // RFC 6234 / FIPS 180-4 "abc" for the two hashes LUKS uses most.
        assert_eq!(
            hex::encode(hash("sha256").unwrap().digest(&[b"a", b"bc"])),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex::encode(hash("ripemd160").unwrap().digest(&[b"abc"])),
            "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"
        );
    }

    #[test]
    fn argon2_refuses_costs_outside_its_bounds() {
        let k = Kdf::Argon2 {
            id: true,
            time: 1,
            memory_kib: 8 << 20,
            cpus: 4,
        };
        assert!(k.check(1 << 30).unwrap_err().contains("over the limit"));
        let k = Kdf::Argon2 {
            id: true,
            time: 1,
            memory_kib: 16,
            cpus: 4,
        };
        assert!(k.check(1 << 20).unwrap_err().contains("8 KiB a lane"));
        assert!(
            Kdf::Pbkdf2 {
                hash: "md5".into(),
                iterations: 1
            }
            .check(0)
            .unwrap_err()
            .contains("not one LUKS names")
        );
    }
}
