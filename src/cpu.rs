//! CPU features, and which implementation of each cipher the engine uses on
//! this machine. One table: the ciphers' SIMD gates and `dmch doctor` read the
//! same entries, so what doctor reports is what runs.

/// Instruction tiers, lowest first, as `DMCH_CPU` names them: each caps
/// which backends may run, like OpenSSL's `OPENSSL_ia32cap`, so a machine
/// with AVX-512 can run (and test) the code a runner without it will.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// No SIMD backend: the crates' and our own portable code only.
    Portable,
    /// AES-NI and PCLMULQDQ on 128-bit registers (Westmere and later).
    Aesni,
    /// AVX2 (Haswell and later).
    Avx2,
    /// VAES and VPCLMULQDQ on 256-bit registers (Zen 3, Alder Lake).
    Vaes256,
    /// AVX-512 with VAES, VBMI and GFNI (Ice Lake and later, Zen 4).
    Avx512,
}

impl Tier {
    /// Every tier, lowest first.
    pub const ALL: [Tier; 5] = [
        Tier::Portable,
        Tier::Aesni,
        Tier::Avx2,
        Tier::Vaes256,
        Tier::Avx512,
    ];

    /// The name `DMCH_CPU` takes.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Portable => "portable",
            Tier::Aesni => "aesni",
            Tier::Avx2 => "avx2",
            Tier::Vaes256 => "vaes256",
            Tier::Avx512 => "avx512",
        }
    }

    /// By name.
    pub fn parse(s: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.name() == s)
    }

    /// What the CPU needs for the tier (each includes the ones below).
    pub fn features(self) -> &'static [&'static str] {
        match self {
            Tier::Portable => &[],
            Tier::Aesni => &["aes", "pclmulqdq"],
            Tier::Avx2 => &["aes", "pclmulqdq", "avx2"],
            Tier::Vaes256 => &["aes", "pclmulqdq", "avx2", "vaes", "vpclmulqdq"],
            Tier::Avx512 => &[
                "aes",
                "pclmulqdq",
                "avx2",
                "vaes",
                "vpclmulqdq",
                "avx512f",
                "avx512bw",
                "avx512vbmi",
                "gfni",
            ],
        }
    }

    /// The tiers this CPU can run, lowest first.
    pub fn available() -> Vec<Tier> {
        Tier::ALL
            .into_iter()
            .filter(|t| t.features().iter().all(|f| has(f)))
            .collect()
    }
}

/// The `DMCH_CPU` value, or why it is not one: `dmch` refuses a bad one
/// before doing anything; the library treats it as `portable`.
pub fn tier_from_env() -> Result<Option<Tier>, String> {
    match std::env::var("DMCH_CPU") {
        Err(_) => Ok(None),
        Ok(v) if v.is_empty() => Ok(None),
        Ok(v) => Tier::parse(&v).map(Some).ok_or_else(|| {
            format!(
                "DMCH_CPU={v}: not one of {}",
                Tier::ALL.map(|t| t.name()).join(", ")
            )
        }),
    }
}

/// The highest tier backends may use: `DMCH_CPU`, `portable` when
/// `DMCH_PORTABLE` is set, else no cap.
pub fn tier_cap() -> Tier {
    static CAP: std::sync::OnceLock<Tier> = std::sync::OnceLock::new();
    *CAP.get_or_init(|| {
        if !simd_allowed() {
            return Tier::Portable;
        }
        match tier_from_env() {
            Ok(Some(t)) => t,
            Ok(None) => Tier::Avx512,
            Err(_) => Tier::Portable,
        }
    })
}

/// A SIMD implementation and the features it needs.
pub struct Simd {
    /// The backend's key (what its token asks for).
    pub backend: &'static str,
    /// The cipher (or part of a mode) it implements, by kernel name.
    pub cipher: &'static str,
    /// What it is, for doctor and bench.
    pub what: &'static str,
    /// CPU features it needs.
    pub features: &'static [&'static str],
    /// The tier it belongs to: it runs only when `DMCH_CPU` allows it.
    pub tier: Tier,
    /// What runs instead when a feature is missing or SIMD is turned off.
    pub fallback: &'static str,
}

/// Every SIMD implementation the engine has; per cipher, best first.
pub const SIMD: &[Simd] = &[
    Simd {
        backend: "aes-vaes512",
        cipher: "aes",
        what: "VAES/AVX-512, 32 blocks in flight, fused XTS/XEX and CBC decryption",
        features: &["aes", "vaes", "vpclmulqdq", "avx512f", "avx512bw"],
        tier: Tier::Avx512,
        fallback: "aes crate (AES-NI when present, else constant-time software)",
    },
    Simd {
        backend: "aes-vaes256",
        cipher: "aes",
        what: "VAES/AVX2 on 256-bit registers, 16 blocks in flight, fused XTS/XEX and CBC decryption",
        features: &["aes", "vaes", "vpclmulqdq", "avx2"],
        tier: Tier::Vaes256,
        fallback: "aes crate (AES-NI when present, else constant-time software)",
    },
    Simd {
        backend: "aes-aesni",
        cipher: "aes",
        what: "AES-NI, 8 blocks in flight, fused XTS/XEX and CBC decryption",
        features: &["aes", "pclmulqdq", "sse2"],
        tier: Tier::Aesni,
        fallback: "aes crate (constant-time software without AES-NI)",
    },
    Simd {
        backend: "serpent-avx512",
        cipher: "serpent",
        what: "AVX-512 bit-sliced, 16 blocks per register set",
        features: &["avx512f"],
        tier: Tier::Avx512,
        fallback: "serpent crate, block by block",
    },
    Simd {
        backend: "serpent-avx2",
        cipher: "serpent",
        what: "AVX2 bit-sliced, two register sets of 8 blocks in flight, S-boxes as 13-16 gate circuits",
        features: &["avx2"],
        tier: Tier::Avx2,
        fallback: "serpent crate, block by block",
    },
    Simd {
        backend: "serpent-sse2",
        cipher: "serpent",
        what: "SSE2 bit-sliced, two register sets of 4 blocks in flight, S-boxes as 13-16 gate circuits",
        features: &["sse2"],
        tier: Tier::Aesni,
        fallback: "serpent crate, block by block",
    },
    Simd {
        backend: "des-avx512",
        cipher: "des",
        what: "AVX-512 VBMI + GFNI, 64 blocks at once",
        features: &["avx512f", "avx512bw", "avx512vbmi", "gfni"],
        tier: Tier::Avx512,
        fallback: "own, byte-indexed SP tables, 4 blocks interleaved",
    },
    Simd {
        backend: "des-avx512",
        cipher: "des3_ede",
        what: "AVX-512 VBMI + GFNI, 64 blocks at once",
        features: &["avx512f", "avx512bw", "avx512vbmi", "gfni"],
        tier: Tier::Avx512,
        fallback: "own, byte-indexed SP tables, 4 blocks interleaved",
    },
    Simd {
        backend: "nh-avx512",
        cipher: "adiantum (NH)",
        what: "NH on AVX-512",
        features: &["avx512f"],
        tier: Tier::Avx512,
        fallback: "scalar NH",
    },
];

/// Ciphers with one portable implementation on every CPU.
pub const PORTABLE: &[(&str, &str)] = &[
    ("twofish", "own, key-dependent tables, 4 blocks interleaved"),
    ("camellia", "own, 64-bit tables, 8 blocks interleaved"),
    ("blowfish", "own, 8 blocks interleaved"),
    ("cast5", "own, RFC 2144 S-boxes, 8 blocks interleaved"),
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
            "sse2" => std::is_x86_feature_detected!("sse2"),
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

/// Whether backend `backend` may run here: the CPU has its features and
/// the tier cap allows it.
fn simd_for(backend: &str) -> bool {
    SIMD.iter()
        .find(|s| s.backend == backend)
        .is_some_and(|s| s.tier <= tier_cap() && missing(s).is_empty())
}

/// The private part of every token: only this module can make one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Proof(());

/// One zero-sized token type per SIMD backend. A token exists only when the
/// CPU has every feature of the backend's `SIMD` entry and the tier cap
/// (`DMCH_CPU`, `DMCH_PORTABLE`) allows it; the backends' entry points take
/// one, so their `target_feature` code cannot be reached on a CPU without
/// the features.
macro_rules! tokens {
    ($($(#[$doc:meta])* $name:ident => $backend:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub(crate) struct $name(Proof);

        impl $name {
            /// The token, when this CPU may run the backend.
            pub(crate) fn get() -> Option<Self> {
                simd_for($backend).then_some($name(Proof(())))
            }
        }
    )*};
}

tokens! {
    /// AES-NI, VAES, VPCLMULQDQ, AVX-512F and AVX-512BW (`cipher/aes/vaes512.rs`).
    AesVaes512 => "aes-vaes512";
    /// AES-NI, VAES, VPCLMULQDQ and AVX2 (`cipher/aes/vaes256.rs`).
    AesVaes256 => "aes-vaes256";
    /// AES-NI (`cipher/aes/aesni.rs`).
    AesNi => "aes-aesni";
    /// AVX-512F (`cipher/serpent/avx512.rs`).
    SerpentAvx512 => "serpent-avx512";
    /// AVX2 (`cipher/serpent/avx2.rs`).
    SerpentAvx2 => "serpent-avx2";
    /// SSE2 (`cipher/serpent/sse2.rs`).
    SerpentSse2 => "serpent-sse2";
    /// AVX-512F/BW, AVX-512 VBMI and GFNI (`cipher/des/avx512.rs`).
    DesAvx512 => "des-avx512";
    /// AVX-512F (`mode/adiantum/nh/avx512.rs`).
    NhAvx512 => "nh-avx512";
}

/// The features every SIMD implementation looks at, for reports.
pub const REPORTED_FEATURES: &[&str] = &[
    "sse2",
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

/// Per cipher: (name, implementation in use, why not a better one).
/// A cipher with several backends shows the best that runs, and the
/// reason the ones above it do not.
pub fn implementations() -> Vec<(&'static str, String, Option<String>)> {
    let cap = tier_cap();
    let mut v: Vec<(&'static str, String, Option<String>)> = Vec::new();
    let mut ciphers: Vec<&'static str> = Vec::new();
    for s in SIMD {
        if !ciphers.contains(&s.cipher) {
            ciphers.push(s.cipher);
        }
    }
    for c in ciphers {
        let mut why: Option<String> = None;
        let mut chosen = None;
        for s in SIMD.iter().filter(|s| s.cipher == c) {
            let miss = missing(s);
            if !miss.is_empty() {
                why.get_or_insert_with(|| format!("the CPU lacks {}", miss.join(", ")));
            } else if s.tier > cap {
                why.get_or_insert_with(|| {
                    if simd_allowed() {
                        format!("DMCH_CPU={} caps it below {}", cap.name(), s.tier.name())
                    } else {
                        "DMCH_PORTABLE is set".into()
                    }
                });
            } else {
                chosen = Some(s);
                break;
            }
        }
        let fallback = SIMD
            .iter()
            .rfind(|s| s.cipher == c)
            .map_or("", |s| s.fallback);
        match chosen {
            Some(s) => v.push((c, format!("{} [{}]", s.what, s.tier.name()), why)),
            None => v.push((c, format!("{fallback} [portable]"), why)),
        }
    }
    for (c, what) in PORTABLE {
        v.push((c, format!("{what} [portable]"), None));
    }
    v
}

/// The tier the engine uses for `spec`'s cipher here (`portable` for
/// ciphers without a backend).
pub fn tier_of(cipher: &str, chain: &str) -> Tier {
    let name = if chain == "adiantum" {
        "adiantum (NH)"
    } else {
        cipher
    };
    SIMD.iter()
        .filter(|s| s.cipher == name)
        .find(|s| s.tier <= tier_cap() && missing(s).is_empty())
        .map_or(Tier::Portable, |s| s.tier)
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
    fn tiers_parse_order_and_nest() {
        use super::Tier;
        for t in Tier::ALL {
            assert_eq!(Tier::parse(t.name()), Some(t));
        }
        assert_eq!(Tier::parse("avx3"), None);
        for w in Tier::ALL.windows(2) {
            assert!(w[0] < w[1]);
            for f in w[0].features() {
                assert!(w[1].features().contains(f), "{:?} drops {f}", w[1]);
            }
        }
        assert_eq!(Tier::available()[0], Tier::Portable);
        // A backend's features are within its tier's (it runs at that tier).
        for s in super::SIMD {
            for f in s.features {
                assert!(
                    *f == "sse2" || s.tier.features().contains(f),
                    "{} needs {f} beyond tier {:?}",
                    s.backend,
                    s.tier
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
