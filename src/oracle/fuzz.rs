//! Seeded random cases for differential fuzzing of the dm-crypt target
//! against the reference (`dmch kernel fuzz`): every cipher, chain and IV
//! mode the reference knows, keycounts, valid and edge key sizes, sector
//! sizes with and without iv_large_sectors, iv_offsets anywhere (around the
//! 2^32 and 2^64 wraps too), device offsets, lengths up to 1 MiB, the
//! optional parameters; and a share of tables that are malformed or on the
//! edge, where the kernel and the reference must agree to refuse.
//!
//! The generator has its own PRNG (splitmix64) and a version: the same
//! seed gives the same cases on every machine and with every dependency
//! version. A change to what it generates bumps [`GENERATOR_VERSION`].

use super::Case;

/// Part of every case id: cases of another version are other cases.
pub const GENERATOR_VERSION: u32 = 1;

/// splitmix64 (Steele, Lea, Flood 2014): small, fast, fully specified.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
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

/// Words and values a table must not carry (refusal parity).
const BAD_FLAGS: &[&str] = &[
    "bogus",
    "sector_size:768",
    "sector_size:8192",
    "integrity:0:none",
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

/// `n` cases from `seed`, with ids `fuzz-v<version>-<seed>-<i>`.
pub fn generate(seed: u64, n: usize) -> Vec<Case> {
    (0..n).map(|i| one(seed, i)).collect()
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
    let keycount: u64 = if rng.chance(15) {
        1 << (1 + rng.below(6))
    } else {
        1
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
    let base = match rng.below(6) {
        0 => 0,
        1 => rng.below(1 << 12),
        2 => (1 << 32) - 1 - rng.below(64),
        3 => u64::MAX - rng.below(64),
        4 => rng.next(),
        _ => rng.below(1 << 20),
    };
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
    let units = if rng.chance(5) {
        (1 << 20) / sector_size as u64
    } else {
        1 + rng.below(32)
    };
    let len = (units * u64::from(sector_size)) as usize;
    let mut flags: Vec<String> = FLAGS
        .iter()
        .filter(|_| rng.chance(15))
        .map(|f| f.to_string())
        .collect();
    if rng.chance(4) {
        flags.push(rng.pick(BAD_FLAGS).to_string());
    }
    let mut cipher = spec;
    // Names the kernel does not know, now and then.
    if rng.chance(2) {
        cipher = cipher.replacen(cipher_name, "rot13", 1);
    }
    let key_hex = hex_key(&mut rng, key_len);
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
    fn version_1_is_pinned() {
        let c = one(1, 0);
        let digest = crate::hash::sha256(
            generate(1, 200)
                .iter()
                .map(|c| c.to_line() + "\n")
                .collect::<String>()
                .as_bytes(),
        );
        assert_eq!(c.id, "fuzz-v1-1-0");
        assert_eq!(
            hex::encode(&digest[..8]),
            PINNED_V1,
            "generator output changed: bump GENERATOR_VERSION and re-pin"
        );
    }

    const PINNED_V1: &str = "e55e162ff2e9162a";

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
    }
}
