//! CPU features, and which implementation of each cipher the engine uses on
//! this machine. One table: the ciphers' SIMD gates and `dmch doctor` read the
//! same entries, so what doctor reports is what runs.

/// A SIMD implementation and the features it needs.
pub struct Simd {
    /// The cipher (or part of a mode) it implements, by kernel name.
    pub cipher: &'static str,
    pub what: &'static str,
    pub features: &'static [&'static str],
    /// What runs instead when a feature is missing or SIMD is turned off.
    pub fallback: &'static str,
}

/// Every SIMD implementation the engine has.
pub const SIMD: &[Simd] = &[
    Simd {
        cipher: "aes",
        what: "VAES/AVX-512, 32 blocks in flight, fused XTS/XEX and CBC decryption",
        features: &["aes", "vaes", "vpclmulqdq", "avx512f", "avx512bw"],
        fallback: "aes crate (AES-NI when present, else constant-time software)",
    },
    Simd {
        cipher: "serpent",
        what: "AVX-512 bit-sliced, 16 blocks per register set",
        features: &["avx512f"],
        fallback: "serpent crate, block by block",
    },
    Simd {
        cipher: "des",
        what: "AVX-512 VBMI + GFNI, 64 blocks at once",
        features: &["avx512f", "avx512bw", "avx512vbmi", "gfni"],
        fallback: "des crate, block by block",
    },
    Simd {
        cipher: "des3_ede",
        what: "AVX-512 VBMI + GFNI, 64 blocks at once",
        features: &["avx512f", "avx512bw", "avx512vbmi", "gfni"],
        fallback: "des crate, block by block",
    },
    Simd {
        cipher: "adiantum (NH)",
        what: "NH on AVX-512",
        features: &["avx512f"],
        fallback: "scalar NH",
    },
];

/// Ciphers with one portable implementation on every CPU.
pub const PORTABLE: &[(&str, &str)] = &[
    ("twofish", "own, key-dependent tables, 4 blocks interleaved"),
    ("camellia", "own, 64-bit tables, 8 blocks interleaved"),
    ("blowfish", "own, 8 blocks interleaved"),
    ("cast5", "cast5 crate, block by block"),
    ("cast6", "cast6 crate"),
    ("aria", "aria crate"),
    ("sm4", "sm4 crate"),
    ("cipher_null", "copy"),
];

/// `DMCH_PORTABLE=1` turns every SIMD implementation off, so the fallbacks
/// can be run over every vector on a machine that has the features.
pub fn simd_allowed() -> bool {
    static ALLOWED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ALLOWED
        .get_or_init(|| std::env::var_os("DMCH_PORTABLE").is_none_or(|v| v.is_empty() || v == "0"))
}

/// Whether the CPU has `feature` (names as `is_x86_feature_detected!`).
pub fn has(feature: &str) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match feature {
            "aes" => std::is_x86_feature_detected!("aes"),
            "vaes" => std::is_x86_feature_detected!("vaes"),
            "vpclmulqdq" => std::is_x86_feature_detected!("vpclmulqdq"),
            "pclmulqdq" => std::is_x86_feature_detected!("pclmulqdq"),
            "avx2" => std::is_x86_feature_detected!("avx2"),
            "avx512f" => std::is_x86_feature_detected!("avx512f"),
            "avx512bw" => std::is_x86_feature_detected!("avx512bw"),
            "avx512vbmi" => std::is_x86_feature_detected!("avx512vbmi"),
            "gfni" => std::is_x86_feature_detected!("gfni"),
            "sha" => std::is_x86_feature_detected!("sha"),
            _ => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = feature;
        false
    }
}

/// The features of `SIMD`'s entry for `cipher` that this CPU lacks.
fn missing(s: &Simd) -> Vec<&'static str> {
    s.features.iter().copied().filter(|f| !has(f)).collect()
}

/// Whether the SIMD implementation of `cipher` may run here.
fn simd_for(cipher: &str) -> bool {
    simd_allowed()
        && SIMD
            .iter()
            .find(|s| s.cipher == cipher)
            .is_some_and(|s| missing(s).is_empty())
}

/// The private part of every token: only this module can make one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Proof(());

/// One zero-sized token type per SIMD backend. A token exists only when the
/// CPU has every feature of the backend's `SIMD` entry and DMCH_PORTABLE is
/// unset; the backends' entry points take one, so their `target_feature`
/// code cannot be reached on a CPU without the features.
macro_rules! tokens {
    ($($(#[$doc:meta])* $name:ident => $cipher:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub(crate) struct $name(Proof);

        impl $name {
            /// The token, when this CPU may run the backend.
            pub(crate) fn get() -> Option<Self> {
                simd_for($cipher).then_some($name(Proof(())))
            }
        }
    )*};
}

tokens! {
    /// AES-NI, VAES, VPCLMULQDQ, AVX-512F and AVX-512BW (`cipher/aes/vaes512.rs`).
    AesVaes512 => "aes";
    /// AVX-512F (`cipher/serpent/avx512.rs`).
    SerpentAvx512 => "serpent";
    /// AVX-512F/BW, AVX-512 VBMI and GFNI (`cipher/des/avx512.rs`).
    DesAvx512 => "des";
    /// AVX-512F (`mode/adiantum/nh/avx512.rs`).
    NhAvx512 => "adiantum (NH)";
}

/// The features every SIMD implementation looks at, for reports.
pub const REPORTED_FEATURES: &[&str] = &[
    "aes",
    "pclmulqdq",
    "vaes",
    "vpclmulqdq",
    "avx2",
    "avx512f",
    "avx512bw",
    "avx512vbmi",
    "gfni",
    "sha",
];

/// The CPU's model name from /proc/cpuinfo.
pub fn model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Per cipher: (name, implementation in use, why not the SIMD one).
pub fn implementations() -> Vec<(&'static str, String, Option<String>)> {
    let mut v = Vec::new();
    for s in SIMD {
        let miss = missing(s);
        if !simd_allowed() && miss.is_empty() {
            v.push((
                s.cipher,
                s.fallback.to_string(),
                Some("DMCH_PORTABLE is set".into()),
            ));
        } else if miss.is_empty() {
            v.push((s.cipher, s.what.to_string(), None));
        } else {
            v.push((
                s.cipher,
                s.fallback.to_string(),
                Some(format!("the CPU lacks {}", miss.join(", "))),
            ));
        }
    }
    for (c, what) in PORTABLE {
        v.push((c, what.to_string(), None));
    }
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_simd_feature_is_one_we_can_detect() {
        for s in super::SIMD {
            for f in s.features {
                assert!(
                    super::REPORTED_FEATURES.contains(f),
                    "{} needs {f}, which has() does not know",
                    s.cipher
                );
            }
        }
    }

    #[test]
    fn implementations_cover_every_registered_cipher() {
        let listed: Vec<&str> = super::implementations().iter().map(|i| i.0).collect();
        for name in crate::cipher::names() {
            assert!(
                listed.contains(&name),
                "{name} missing from cpu::implementations"
            );
        }
    }
}
