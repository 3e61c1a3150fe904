//! Seeded random cases for differential fuzzing of the dm-crypt target
//! against the reference (`dmch kernel fuzz`): every cipher, chain and IV
//! mode the reference knows, keycounts, valid and edge key sizes, sector
//! sizes with and without iv_large_sectors, iv_offsets anywhere (around the
//! 2^32 and 2^64 wraps too), device offsets, lengths up to 1 MiB, the
//! optional parameters; and a share of tables that are malformed or on the
//! edge, where the kernel and the reference must agree to refuse. Version
//! 3 adds malformed raw keys (odd lengths, non-hex characters, backslashes,
//! whitespace or a NUL inside, `-`, keyring references with bad sizes or
//! types), drawn from their own stream so the rest of a case is version 2's.
//!
//! The generator has its own PRNG (splitmix64) and a version: the same
//! seed gives the same cases on every machine and with every dependency
//! version. A change to what it generates bumps [`GENERATOR_VERSION`].

use super::{Case, Pattern, Step};

/// Part of every case id: cases of another version are other cases.
pub const GENERATOR_VERSION: u32 = 3;

/// splitmix64 (Steele, Lea, Flood 2014): small, fast, fully specified.
/// Also the `random:SEED` data pattern, so both ends of a guest make the
/// same bytes.
pub(crate) fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        splitmix(&mut self.0)
    }

    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// (cipher, key sizes it takes) for the old-form specs.
const CIPHERS: &[(&str, &[usize])] = &[
    ("aes", &[16, 24, 32]),
    ("serpent", &[16, 24, 32]),
    ("twofish", &[16, 24, 32]),
    ("camellia", &[16, 24, 32]),
    ("cast6", &[16, 24, 32]),
    ("cast5", &[5, 10, 16]),
    ("blowfish", &[4, 16, 56]),
    ("des", &[8]),
    ("des3_ede", &[24]),
];

/// Chain modes and what they do to the key and block size rules.
const CHAINS: &[&str] = &[
    "cbc", "cbc", "cbc", "xts", "xts", "ecb", "lrw", "ctr", "pcbc",
];

const IVS: &[&str] = &[
    "plain",
    "plain64",
    "plain64",
    "plain64be",
    "essiv:sha256",
    "essiv:sha1",
    "benbi",
    "eboiv",
    "null",
    "lmk",
    "tcw",
    "elephant",
];

const FLAGS: &[&str] = &[
    "allow_discards",
    "same_cpu_crypt",
    "submit_from_crypt_cpus",
    "no_read_workqueue",
    "no_write_workqueue",
];

/// Words and values on the edge of what a table may carry (refusal
/// parity): some the kernel refuses, some it reads in its own way.
const ODD_FLAGS: &[&str] = &[
    "bogus",
    "sector_size:768",
    "sector_size:8192",
    "sector_size:0512",
    "sector_size:66048",
    "sector_size:512x",
    "SECTOR_SIZE:512",
    "integrity:0:none",
    "iv_large_sectors:1",
];

/// The key length (bytes) for one instance of `cipher` under `chain`.
fn instance_key(rng: &mut Rng, sizes: &[usize], chain: &str) -> usize {
    let k = *rng.pick(sizes);
    match chain {
        "xts" => 2 * k,
        "lrw" => k + 16,
        _ => k,
    }
}

fn hex_key(rng: &mut Rng, len: usize) -> String {
    if len == 0 {
        return "-".into();
    }
    (0..len)
        .map(|_| format!("{:02x}", rng.below(256)))
        .collect()
}

/// Keyring references the guest's keyring never holds, well and badly
/// formed: every kernel must refuse them, each at its own check.
const KEYRING_REFS: &[&str] = &[
    ":32:logon:dmch:fuzz",
    ":16:user:dmch-fuzz",
    ":0:logon:dmch",
    ":32:bogus:dmch",
    ":32:trusted:dmch",
    ":32:encrypted:dmch",
    ":x:logon:dmch",
    "::logon:dmch",
    ":32:logon",
    ":32:logon:",
    ":32:",
    ":",
    ":4294967296:user:dmch",
    ":-1:logon:dmch",
    ":+32:logon:dmch",
];

/// `key` broken one way: what a table typed or generated badly holds.
fn malformed_key(rng: &mut Rng, key: &str) -> String {
    let at = |rng: &mut Rng, n: usize| rng.below(n.max(1) as u64) as usize;
    let k = key.to_string();
    let n = k.len();
    match rng.below(12) {
        // Odd lengths: the kernel reads strlen/2 bytes and never looks at
        // the last character.
        0 => k[..n.saturating_sub(1)].to_string(),
        1 => format!("{k}{:x}", rng.below(16)),
        2 => format!("{k}{}", rng.pick(&["g", "z", "-", ":", "G", "%"])),
        // A non-hex character inside.
        3 => {
            let i = at(rng, n);
            format!(
                "{}{}{}",
                &k[..i],
                rng.pick(&["g", "x", "-", ":", "."]),
                &k[i + 1.min(n - i)..]
            )
        }
        // A backslash quotes the next character (dm_split_args).
        4 => {
            let i = at(rng, n);
            format!("{}\\{}", &k[..i], &k[i..])
        }
        5 => format!("{k}\\"),
        // Whitespace inside (in the first half: the words after it must not
        // read as numbers) or after it.
        6 => {
            let i = at(rng, n / 2);
            format!("{}{}{}", &k[..i], rng.pick(&[" ", "\t", "\n"]), &k[i..])
        }
        7 => format!("{k}{}", rng.pick(&[" ", "\t", "\r", "\u{b}", "\u{c}"])),
        // A NUL ends the table (the ioctl's C string).
        8 => {
            let i = at(rng, n);
            format!("{}\0{}", &k[..i], &k[i..])
        }
        9 => "-".into(),
        10 => rng.pick(&["-0", "0", "--", "-00", "x"]).to_string(),
        _ => rng.pick(KEYRING_REFS).to_string(),
    }
}

/// A data pattern: mostly the counter, sometimes zeros, random or repeating.
fn pattern(rng: &mut Rng) -> Pattern {
    match rng.below(20) {
        0..=11 => Pattern::Counter,
        12..=14 => Pattern::Zeros,
        15..=17 => Pattern::Random(rng.next()),
        _ => Pattern::Repeat(
            (0..1 + rng.below(16))
                .map(|_| rng.below(256) as u8)
                .collect(),
        ),
    }
}

/// `n` cases from `seed`, with ids `fuzz-v<version>-<seed>-<i>`.
pub fn generate(seed: u64, n: usize) -> Vec<Case> {
    generate_range(seed, 0, n)
}

/// Cases `first..first + n` of `seed` (a campaign's next batch).
pub fn generate_range(seed: u64, first: usize, n: usize) -> Vec<Case> {
    (first..first + n).map(|i| one(seed, i)).collect()
}

/// Case `i` of `seed`: each case from its own stream, so a case can be
/// made again alone (from its id).
pub fn one(seed: u64, i: usize) -> Case {
    let mut rng = Rng(seed ^ (i as u64).wrapping_mul(0xd1b5_4a32_d192_ed03));
    for _ in 0..4 {
        rng.next();
    }
    let adiantum = rng.chance(4);
    let (cipher_name, sizes) = *rng.pick(CIPHERS);
    let chain = *rng.pick(CHAINS);
    let iv = *rng.pick(IVS);
    let keycount: u64 = match rng.below(100) {
        0..=79 => 1,
        // Not a power of two: both must refuse.
        80 | 81 => *rng.pick(&[3u64, 5, 6, 12]),
        _ => 1 << (1 + rng.below(6)),
    };
    let mut key_len;
    let spec;
    if adiantum {
        let x = if rng.chance(50) {
            "xchacha12"
        } else {
            "xchacha20"
        };
        spec = format!("{x},aes-adiantum-plain64");
        key_len = 32;
    } else {
        let kc = if keycount > 1 {
            format!(":{keycount}")
        } else {
            String::new()
        };
        spec = format!("{cipher_name}{kc}-{chain}-{iv}");
        key_len = instance_key(&mut rng, sizes, chain) * keycount as usize;
        // The compatibility modes' extra key material at the end.
        key_len += match iv {
            "tcw" => {
                16 + if cipher_name == "des3_ede"
                    || cipher_name == "des"
                    || cipher_name == "blowfish"
                    || cipher_name == "cast5"
                {
                    8
                } else {
                    16
                }
            }
            "elephant" => key_len,
            "lmk" if rng.chance(50) => key_len / keycount as usize,
            _ => 0,
        };
    }
    // Edge key lengths: one byte off either way.
    if rng.chance(8) {
        key_len = if rng.chance(50) {
            key_len + 1
        } else {
            key_len.saturating_sub(1)
        };
    }
    let sector_size = if iv == "lmk" || iv == "tcw" || rng.chance(55) {
        512
    } else {
        *rng.pick(&[1024u32, 2048, 4096])
    };
    let step = u64::from(sector_size / 512);
    let large = sector_size > 512 && rng.chance(40);
    let near = |rng: &mut Rng| match rng.below(6) {
        0 => 0,
        1 => rng.below(1 << 12),
        2 => (1 << 32) - 1 - rng.below(64),
        3 => u64::MAX - rng.below(64),
        4 => rng.next(),
        _ => rng.below(1 << 20),
    };
    let base = near(&mut rng);
    // Mostly aligned as the kernel wants; sometimes not (it must refuse).
    let iv_offset = if rng.chance(95) {
        base - base % step
    } else {
        base | 1
    };
    let offset = match rng.below(10) {
        0..=6 => 0,
        7 | 8 => step * rng.below(64),
        _ => 1 + rng.below(7),
    };
    let units = match rng.below(100) {
        0 => (4 << 20) / sector_size as u64,
        1..=4 => (1 << 20) / sector_size as u64,
        _ => 1 + rng.below(32),
    };
    let mut len = (units * u64::from(sector_size)) as usize;
    // A length that is not whole encryption sectors: both must refuse.
    if sector_size > 512 && rng.chance(3) {
        len += 512;
    }
    let mut flags: Vec<String> = FLAGS
        .iter()
        .filter(|_| rng.chance(15))
        .map(|f| f.to_string())
        .collect();
    // The kernel compares flag names without case, and takes repeats.
    if !flags.is_empty() && rng.chance(10) {
        let f = flags[0].clone();
        flags.push(if rng.chance(50) { f.to_uppercase() } else { f });
    }
    if rng.chance(5) {
        flags.push(rng.pick(ODD_FLAGS).to_string());
    }
    let n_opts = flags.len() as u64 + u64::from(sector_size != 512) + u64::from(large);
    // A count that lies (one more or fewer than follow, far too many) or
    // is spelled oddly.
    let opt_count = match rng.below(100) {
        0 | 1 => Some((n_opts + 1).to_string()),
        2 | 3 if n_opts > 0 => Some((n_opts - 1).to_string()),
        4 => Some((8 + rng.below(4)).to_string()),
        5 if n_opts > 0 => Some(format!("+{n_opts}")),
        6 if n_opts > 0 => Some(format!("0{n_opts}")),
        7 => Some(((1u64 << 32) + n_opts).to_string()),
        _ => None,
    };
    // The iv_offset spelled with leading zeros, or past 2^64.
    let iv_offset_text = match rng.below(100) {
        0 | 1 => Some((u128::from(iv_offset) + (1u128 << 64)).to_string()),
        2 => Some(format!("000{iv_offset}")),
        _ => None,
    };
    let data = pattern(&mut rng);
    let mut steps = Vec::new();
    if rng.chance(15) {
        for _ in 0..1 + rng.below(4) {
            if rng.chance(40) {
                let b = near(&mut rng);
                steps.push(Step::Reload {
                    iv_offset: b - b % step,
                    offset: step * rng.below(64),
                });
            } else {
                let unit = rng.below(units);
                steps.push(Step::Write {
                    unit,
                    units: 1 + rng.below(units - unit),
                    data: pattern(&mut rng),
                });
            }
        }
    }
    let mut cipher = spec;
    // Names the kernel does not know, now and then.
    if rng.chance(2) {
        cipher = cipher.replacen(cipher_name, "rot13", 1);
    }
    let mut key_hex = hex_key(&mut rng, key_len);
    if rng.chance(2) {
        key_hex = key_hex.to_uppercase();
    }
    // Version 3: malformed keys, from a stream of their own.
    let mut keys = Rng(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x6b65_7973);
    for _ in 0..4 {
        keys.next();
    }
    if keys.chance(8) {
        key_hex = malformed_key(&mut keys, &key_hex);
    }
    Case {
        id: format!("fuzz-v{GENERATOR_VERSION}-{seed}-{i}"),
        cipher,
        key_hex,
        iv_offset,
        sector_size,
        iv_large_sectors: large,
        offset,
        len,
        flags,
        opt_count,
        iv_offset_text,
        data,
        steps,
    }
}

/// The seed and index of a fuzz case id, to make it again.
pub fn parse_id(id: &str) -> Option<(u64, usize)> {
    let rest = id.strip_prefix(&format!("fuzz-v{GENERATOR_VERSION}-"))?;
    let (seed, i) = rest.split_once('-')?;
    Some((seed.parse().ok()?, i.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_cases_and_ids_name_them() {
        let a = generate(42, 300);
        assert_eq!(a, generate(42, 300));
        assert_ne!(a, generate(43, 300));
        for (i, c) in a.iter().enumerate() {
            assert_eq!(parse_id(&c.id), Some((42, i)));
            assert_eq!(one(42, i), *c);
            assert_eq!(Case::from_line(&c.to_line()).as_ref(), Some(c));
        }
    }

    /// Pinned values: a change to the generator must bump its version.
    #[test]
    fn version_3_is_pinned() {
        let c = one(1, 0);
        let digest = crate::hash::sha256(
            generate(1, 200)
                .iter()
                .map(|c| c.to_line() + "\n")
                .collect::<String>()
                .as_bytes(),
        );
        assert_eq!(c.id, "fuzz-v3-1-0");
        assert_eq!(
            hex::encode(&digest[..8]),
            PINNED_V3,
            "generator output changed: bump GENERATOR_VERSION and re-pin"
        );
    }

    const PINNED_V3: &str = "067f2a22f8f42600";

    /// Enough of every kind: accepted tables through every IV mode,
    /// refused ones, big ones, flags, wraps.
    #[test]
    fn cases_cover_the_space() {
        let cases = generate(7, 2000);
        let accepted: Vec<&Case> = cases.iter().filter(|c| c.reference().is_ok()).collect();
        let refused = cases.len() - accepted.len();
        assert!(accepted.len() > 800, "{} accepted", accepted.len());
        assert!(refused > 200, "{refused} refused");
        for iv in [
            "plain",
            "plain64",
            "plain64be",
            "essiv",
            "benbi",
            "eboiv",
            "null",
            "lmk",
            "tcw",
            "elephant",
            "adiantum",
        ] {
            assert!(
                accepted.iter().any(|c| c.cipher.contains(iv)),
                "no accepted case with {iv}"
            );
        }
        assert!(accepted.iter().any(|c| c.len >= 1 << 20));
        assert!(accepted.iter().any(|c| c.iv_large_sectors));
        assert!(accepted.iter().any(|c| c.iv_offset > u64::MAX - 4096));
        assert!(accepted.iter().any(|c| !c.flags.is_empty()));
        assert!(
            accepted
                .iter()
                .any(|c| c.cipher.contains(":64-") || c.cipher.contains(":32-"))
        );
        // Version 2: data patterns, sequences, lying counts, odd values.
        for rank in 0..4 {
            assert!(
                accepted.iter().any(|c| c.data.rank() == rank),
                "no data rank {rank}"
            );
        }
        let reloads = |c: &&&Case| c.steps.iter().any(|s| matches!(s, Step::Reload { .. }));
        let writes = |c: &&&Case| c.steps.iter().any(|s| matches!(s, Step::Write { .. }));
        assert!(accepted.iter().filter(reloads).count() > 20);
        assert!(accepted.iter().filter(writes).count() > 40);
        assert!(cases.iter().filter(|c| c.opt_count.is_some()).count() > 40);
        assert!(accepted.iter().any(|c| c.len >= 4 << 20));
        assert!(cases.iter().any(|c| c.len % c.sector_size as usize != 0));
        assert!(
            cases
                .iter()
                .any(|c| c.flags.iter().any(|f| f.starts_with("sector_size:")))
        );
        // Version 3: malformed keys, some of which the kernel takes (an odd
        // length, a backslash, trailing whitespace) and some it refuses.
        let odd = |c: &&&Case| c.key_hex.len() % 2 == 1 && c.key_hex.len() > 1;
        assert!(accepted.iter().filter(odd).count() > 5);
        assert!(accepted.iter().any(|c| c.key_hex.contains('\\')));
        assert!(
            accepted
                .iter()
                .any(|c| c.key_hex.ends_with([' ', '\t', '\r']))
        );
        let refused: Vec<&Case> = cases.iter().filter(|c| c.reference().is_err()).collect();
        assert!(refused.iter().any(|c| c.key_hex.contains('\0')));
        assert!(refused.iter().any(|c| c.key_hex.starts_with(':')));
        assert!(refused.iter().any(|c| c.key_hex.contains(' ')));
    }
}
