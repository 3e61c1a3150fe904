//! Deliberately wrong references, one kernel rule broken each, so that the
//! tests named after the rules, `dmch check` and the kernel oracle can prove
//! they would notice. Only the `test-fault` feature can switch one on
//! (`DMCH_TEST_FAULT=<name>` or [`crate::engine::SectorCrypt::new_with_fault`]);
//! without it every check of a fault is a constant `false`.

/// One broken rule, or none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// The reference as it is.
    #[default]
    None,
    /// Every IV byte-reversed: plain64 written big-endian.
    ByteswapIv,
    /// IVs byte-reversed only for IV sectors at or above 2^32.
    ByteswapIvAbove4g,
    /// plain keeps all 64 bits of the sector instead of the low 32.
    PlainNotCut,
    /// ESSIV salts instance i with the key of instance i+1.
    EssivOtherSalt,
    /// iv_large_sectors shifts the sector the key instance is chosen by.
    LargeSectorsPickInstance,
    /// iv_large_sectors ignored when keycount > 1.
    LargeSectorsIgnoredWithKeys,
    /// tcw whitening without its CRC32 step.
    TcwNoCrc,
    /// elephant runs diffuser B before A on writes (and the reverse on reads).
    ElephantSwappedDiffusers,
    /// lmk takes key parts under 16 bytes as defined, padding the seed
    /// with zeros (what an earlier reference encoded: the kernel reads past
    /// the key there, so no result of it is defined).
    LmkShortSeedPadded,
    /// Table numbers of 2^64 or more wrap on every kernel version (the
    /// 6.12 rule taken for all: 7.2 saturates them).
    NumbersAlwaysWrap,
    /// Table numbers of 2^64 or more saturate on every kernel version
    /// (the 7.2 rule taken for all: 6.12 wraps them).
    NumbersAlwaysSaturate,
    /// A hex key of odd length is refused (the kernel drops its last
    /// character instead).
    OddKeyRefused,
    /// A backslash in a table is an ordinary character (the kernel's
    /// argument splitter takes it as quoting the next one).
    BackslashLiteral,
}

/// Every fault with its `DMCH_TEST_FAULT` name.
pub const ALL: &[(&str, Fault)] = &[
    ("byteswap-iv", Fault::ByteswapIv),
    ("byteswap-iv-above-4g", Fault::ByteswapIvAbove4g),
    ("plain-not-cut", Fault::PlainNotCut),
    ("essiv-other-salt", Fault::EssivOtherSalt),
    (
        "large-sectors-pick-instance",
        Fault::LargeSectorsPickInstance,
    ),
    (
        "large-sectors-ignored-with-keys",
        Fault::LargeSectorsIgnoredWithKeys,
    ),
    ("tcw-no-crc", Fault::TcwNoCrc),
    (
        "elephant-swapped-diffusers",
        Fault::ElephantSwappedDiffusers,
    ),
    ("lmk-short-seed-padded", Fault::LmkShortSeedPadded),
    ("numbers-always-wrap", Fault::NumbersAlwaysWrap),
    ("numbers-always-saturate", Fault::NumbersAlwaysSaturate),
    ("odd-key-refused", Fault::OddKeyRefused),
    ("backslash-literal", Fault::BackslashLiteral),
];

impl Fault {
    /// Whether this is fault `f`. Always false without the `test-fault`
    /// feature, so release builds fold every fault branch away.
    #[inline(always)]
    pub fn is(self, f: Fault) -> bool {
        cfg!(feature = "test-fault") && self == f
    }

    /// The fault's name, as `DMCH_TEST_FAULT` takes it.
    pub fn name(self) -> &'static str {
        ALL.iter()
            .find(|(_, f)| *f == self)
            .map_or("none", |(n, _)| n)
    }

    /// The fault named `name` (`none` is no fault).
    pub fn parse(name: &str) -> Result<Fault, String> {
        if name == "none" {
            return Ok(Fault::None);
        }
        ALL.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                format!(
                    "unknown fault '{name}' (known: {})",
                    ALL.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                )
            })
    }

    /// The fault `DMCH_TEST_FAULT` names; always none without the
    /// `test-fault` feature (the variable is then ignored).
    pub fn from_env() -> Result<Fault, String> {
        if !cfg!(feature = "test-fault") {
            return Ok(Fault::None);
        }
        match std::env::var("DMCH_TEST_FAULT") {
            Ok(v) if !v.is_empty() => Fault::parse(&v).map_err(|e| format!("DMCH_TEST_FAULT: {e}")),
            _ => Ok(Fault::None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_has_a_name_that_parses_back() {
        for (n, f) in ALL {
            assert_eq!(Fault::parse(n), Ok(*f));
            assert_eq!(f.name(), *n);
        }
        assert_eq!(Fault::parse("none"), Ok(Fault::None));
        assert!(
            Fault::parse("nonsense")
                .unwrap_err()
                .contains("byteswap-iv")
        );
    }

    #[test]
    fn no_fault_is_on_without_the_feature() {
        for (_, f) in ALL {
            assert_eq!(f.is(*f), cfg!(feature = "test-fault"));
        }
        assert!(!Fault::None.is(Fault::ByteswapIv));
    }
}
