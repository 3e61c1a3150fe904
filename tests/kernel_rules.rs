//! Protects each rule of the kernel the reference follows: every test
//! replays the known vectors that exercise one rule (kernel-produced and
//! published ones) and, with the `test-fault` feature, proves that a
//! reference with that one rule broken fails them. A rule whose vectors
//! could not tell a wrong engine from the right one would fail here.

use dmcrypt_harness::engine::{Geometry, SectorCrypt};
use dmcrypt_harness::fault::Fault;
use dmcrypt_harness::spec::CipherSpec;
use dmcrypt_harness::vectors::{self, Expected, Kind, Vector};

/// A sector vector with its parsed spec and geometry.
struct Sv {
    v: Vector,
    spec: CipherSpec,
    g: Geometry,
    start: u64,
}

impl Sv {
    /// The first IV sector and the one past the last, in 512-byte units
    /// (before any iv_large_sectors shift).
    fn cc_range(&self) -> (u128, u128) {
        let first = u128::from(self.start) + u128::from(self.g.iv_offset);
        (
            first,
            first + (self.v.plaintext.bytes().len() / 512) as u128,
        )
    }

    /// Whether an engine with `fault` reproduces the vector.
    fn agrees(&self, fault: Fault) -> bool {
        let Ok(e) = SectorCrypt::new_with_fault(&self.spec, &self.v.key, self.g, fault) else {
            return false;
        };
        let mut d = self.v.plaintext.bytes();
        if e.encrypt(self.start, &mut d).is_err() {
            return false;
        }
        match &self.v.expected {
            Expected::Hex(h) => d == *h,
            Expected::Sha256(h) => dmcrypt_harness::hash::sha256(&d) == *h,
        }
    }
}

fn sector_vectors() -> Vec<Sv> {
    let mut out = Vec::new();
    for (name, text) in vectors::builtin() {
        for v in vectors::parse(name, text).unwrap().vectors {
            if let Kind::Sector {
                spec,
                iv_offset,
                sector_size,
                iv_large_sectors,
                start_sector,
            } = &v.kind
            {
                let Ok(s) = CipherSpec::parse(spec) else {
                    continue;
                };
                let g = Geometry {
                    sector_size: *sector_size,
                    iv_offset: *iv_offset,
                    iv_large_sectors: *iv_large_sectors,
                };
                let start = *start_sector;
                out.push(Sv {
                    v,
                    spec: s,
                    g,
                    start,
                });
            }
        }
    }
    out
}

/// The rule holds on every vector `exercises` picks, and a reference with
/// `broken` fails at least one of them.
fn rule(name: &str, exercises: impl Fn(&Sv) -> bool, broken: Fault) {
    let all = sector_vectors();
    let picked: Vec<&Sv> = all.iter().filter(|s| exercises(s)).collect();
    assert!(
        picked.len() >= 2,
        "{name}: only {} vectors exercise it",
        picked.len()
    );
    assert!(
        picked.iter().any(|s| s.v.source.starts_with("Linux")),
        "{name}: no kernel-produced vector exercises it"
    );
    for s in &picked {
        assert!(s.agrees(Fault::None), "{name}: {} fails", s.v.id);
    }
    if cfg!(feature = "test-fault") {
        let caught = picked.iter().filter(|s| !s.agrees(broken)).count();
        assert!(
            caught > 0,
            "{name}: a reference with {} passes all {} vectors",
            broken.name(),
            picked.len()
        );
        println!(
            "{name}: {} vectors, {caught} fail with {}",
            picked.len(),
            broken.name()
        );
    } else {
        println!(
            "{name}: {} vectors pass; SKIPPED the broken-reference half: needs --features test-fault",
            picked.len()
        );
    }
}

fn iv_mode(s: &Sv) -> Option<&str> {
    s.spec.effective_ivmode()
}

/// `plain` is the cryptoloop IV: the low 32 bits of the sector, so it wraps
/// at 2^32 (cryptsetup's vectors and the kernel's near the wrap).
#[test]
fn plain_keeps_only_the_low_32_bits_of_the_sector() {
    rule(
        "plain keeps the low 32 bits",
        |s| iv_mode(s) == Some("plain") && s.cc_range().1 > 1 << 32,
        Fault::PlainNotCut,
    );
}

/// plain64 is the sector as a little-endian 64-bit number, above 2^32 too.
#[test]
fn plain64_is_the_little_endian_sector_above_2_32() {
    rule(
        "plain64 above 2^32",
        |s| iv_mode(s) == Some("plain64") && s.cc_range().1 > 1 << 32,
        Fault::ByteswapIvAbove4g,
    );
}

/// Since 5.4 each key instance's ESSIV salt is the hash of that instance's
/// own key.
#[test]
fn essiv_salts_each_key_instance_with_its_own_key() {
    rule(
        "essiv salt per instance",
        |s| iv_mode(s) == Some("essiv") && s.spec.keycount > 1,
        Fault::EssivOtherSalt,
    );
}

/// With iv_large_sectors only the IV sector is shifted; the key instance
/// is still chosen by the 512-byte sector.
#[test]
fn iv_large_sectors_never_changes_the_key_instance() {
    rule(
        "iv_large_sectors keeps the instance",
        |s| s.g.iv_large_sectors && s.g.sector_size > 512 && s.spec.keycount > 1,
        Fault::LargeSectorsPickInstance,
    );
}

/// iv_large_sectors applies with several keys as with one.
#[test]
fn iv_large_sectors_holds_with_several_keys() {
    rule(
        "iv_large_sectors with keycount > 1",
        |s| s.g.iv_large_sectors && s.g.sector_size > 512 && s.spec.keycount > 1,
        Fault::LargeSectorsIgnoredWithKeys,
    );
}

/// tcw's whitening words each pass through the kernel's crc32 (seed 0, no
/// final inversion) before they are folded and XORed over the sector.
#[test]
fn tcw_whitening_goes_through_crc32() {
    rule(
        "tcw whitening through crc32",
        |s| iv_mode(s) == Some("tcw"),
        Fault::TcwNoCrc,
    );
}

/// elephant writes run diffuser A, then B (reads B's inverse, then A's).
#[test]
fn elephant_runs_diffuser_a_before_b() {
    rule(
        "elephant diffuser order",
        |s| iv_mode(s) == Some("elephant"),
        Fault::ElephantSwappedDiffusers,
    );
}

/// lmk v3 with key parts under 16 bytes has no defined result (the
/// kernel copies its 16-byte seed from past the key, crypt_iv_lmk_init):
/// the reference refuses such a table as undefined, on every kernel
/// version; a reference that pads the seed (what an earlier one did) fails.
#[test]
fn lmk_short_key_parts_have_no_defined_result() {
    use dmcrypt_harness::oracle::{Case, Refusal, matrix};
    let short: Vec<Case> = matrix::cases()
        .into_iter()
        .filter(|c| {
            c.id.starts_with("des:64-cbc-lmk/k520") || c.id.starts_with("cast5:64-cbc-lmk/k650")
        })
        .collect();
    assert!(short.len() >= 4, "the matrix lost its short-part lmk cases");
    for c in &short {
        match c.reference() {
            Err(Refusal::Undefined(why)) => assert!(why.contains("crypt_iv_lmk_init"), "{why}"),
            other => panic!("{}: {:?}", c.id, other.map(|_| "a result")),
        }
    }
    // 16-byte parts are defined.
    let full = matrix::cases()
        .into_iter()
        .find(|c| c.id.starts_with("aes:64-cbc-lmk/k1040"))
        .expect("a v3 lmk case with 16-byte parts");
    assert!(full.reference().is_ok());
    if cfg!(feature = "test-fault") {
        for c in &short {
            assert!(
                c.model(Fault::LmkShortSeedPadded).is_ok(),
                "the padding reference is not caught by {}",
                c.id
            );
        }
    }
}

/// Numbers past 2^64 in a table: up to 6.12 the kernel's sscanf wraps them
/// modulo 2^64; from 6.13 kstrtoull's overflow check saturates them at
/// 2^64 - 1 (src/table.rs, `Overflow`). The recorded regressions of both
/// sides replay under their own kernel's rules, and a reference that always
/// wraps or always saturates fails the other side's records.
#[test]
fn iv_offsets_past_2_64_follow_the_kernel_that_ran_them() {
    use dmcrypt_harness::oracle::regressions;
    let big: Vec<_> = regressions::builtin()
        .into_iter()
        .filter(|r| r.case.to_words().contains("iv_offset_text="))
        .collect();
    let on = |major: &str| -> Vec<_> {
        big.iter()
            .filter(|r| r.kernel.starts_with(major))
            .cloned()
            .collect()
    };
    let (old, new) = (on("6.12."), on("7.2."));
    assert!(old.len() >= 3 && new.len() >= 3, "records on 6.12 and 7.2");
    for r in old.iter().chain(&new) {
        r.replay(Fault::None).unwrap();
    }
    if cfg!(feature = "test-fault") {
        for r in &old {
            assert!(
                r.replay(Fault::NumbersAlwaysSaturate).is_err(),
                "{}: a saturating reference passes a 6.12 record",
                r.case.id
            );
            assert!(r.replay(Fault::NumbersAlwaysWrap).is_ok());
        }
        for r in &new {
            assert!(
                r.replay(Fault::NumbersAlwaysWrap).is_err(),
                "{}: a wrapping reference passes a 7.2 record",
                r.case.id
            );
            assert!(r.replay(Fault::NumbersAlwaysSaturate).is_ok());
        }
    }
}

/// An aes-cbc-plain table with `key`, read with `fault`'s rules.
fn at(key: &str, fault: Fault) -> dmcrypt_harness::Result<dmcrypt_harness::table::Table> {
    use dmcrypt_harness::table::{Rules, Table};
    Table::parse_as(
        &format!("0 8 crypt aes-cbc-plain {key} 0 /dev/x 0"),
        Rules {
            fault,
            ..Rules::default()
        },
    )
}

/// The kernel sizes a hex key as strlen / 2 (`get_key_size`) and decodes
/// that many bytes (`hex2bin`): an odd-length key's last character is
/// never read, whatever it is (5.10 to 7.3 alike; the fuzzer's malformed
/// keys hold it on every kernel CI boots). A reference that refuses odd
/// keys fails.
#[test]
fn an_odd_length_key_loses_its_last_character() {
    let k = "00112233445566778899aabbccddeeff";
    let even = at(k, Fault::None).unwrap();
    for tail in ["7", "g", "-", ":", "%"] {
        let odd = at(&format!("{k}{tail}"), Fault::None).unwrap();
        assert!(odd.params.key == even.params.key, "tail {tail}");
    }
    // Not for the characters that are read: a non-hex one among them is
    // refused, and 31 digits are a 15-byte key (which AES then refuses).
    assert!(at("0011223344556677889900aabbccddeg0", Fault::None).is_err());
    assert_eq!(at(&k[..31], Fault::None).unwrap().params.key.size(), 15);
    // `-` is the empty key, one lone character is no key at all.
    assert!(at("0", Fault::None).is_err());
    if cfg!(feature = "test-fault") {
        assert!(at(&format!("{k}7"), Fault::OddKeyRefused).is_err());
        assert!(at(k, Fault::OddKeyRefused).is_ok());
    }
}

/// The kernel splits a table into words with `dm_split_args`: a backslash
/// takes the next byte into the word (so `00\11` is the key `0011` and
/// `\ ` a space inside a word), a trailing backslash stays, and the text
/// ends at the first NUL. A reference that keeps backslashes fails.
#[test]
fn a_backslash_quotes_the_next_character_and_a_nul_ends_the_table() {
    use dmcrypt_harness::table::split_args;
    assert_eq!(
        *split_args("a\\ b c\\\\d e\\", Fault::None),
        vec!["a b", "c\\d", "e\\"]
    );
    assert_eq!(*split_args("a b\0c d", Fault::None), vec!["a", "b"]);
    assert_eq!(
        *split_args(" \t\u{b}a\u{c}\r\nb ", Fault::None),
        vec!["a", "b"]
    );
    let k = "00112233445566778899aabbccddeeff";
    let quoted = format!("{}\\{}", &k[..6], &k[6..]);
    let plain = at(k, Fault::None).unwrap();
    assert!(at(&quoted, Fault::None).unwrap().params.key == plain.params.key);
    // A key cut by a NUL leaves too few words.
    assert!(at(&format!("{}\0{}", &k[..6], &k[6..]), Fault::None).is_err());
    if cfg!(feature = "test-fault") {
        assert!(at(&quoted, Fault::BackslashLiteral).is_err());
        assert_eq!(
            *split_args("a\\ b", Fault::BackslashLiteral),
            vec!["a\\", "b"]
        );
    }
}
