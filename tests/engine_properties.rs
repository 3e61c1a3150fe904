//! Properties of the engine over every supported spec: round trips, the two
//! spellings agreeing, and table lines surviving parse/format.

use dmcrypt_harness::cipher;
use dmcrypt_harness::engine::{Geometry, SectorCrypt};
use dmcrypt_harness::key::Key;
use dmcrypt_harness::spec::CipherSpec;
use dmcrypt_harness::table::Table;
use proptest::prelude::*;

/// Every (spec, key length) the reference supports, built from the
/// registries so a new cipher or IV mode is covered without editing this.
fn supported() -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    for name in cipher::names().filter(|n| *n != "cipher_null") {
        let info = cipher::lookup(name).unwrap();
        let lens: Vec<usize> = (0..=64).filter(|&n| info.accepts_key_len(n)).collect();
        let essiv = ["sha256", "md5", "sha1", "rmd160"].into_iter().find(|h| {
            let size = dmcrypt_harness::hash::lookup(h).unwrap().digest_size;
            info.accepts_key_len(size)
        });
        let mut chains = vec!["ecb", "cbc"];
        if info.block_size == 16 {
            chains.extend(["xts", "lrw"]);
        }
        if info.block_size == 16 && info.accepts_key_len(32) {
            for stream in ["xchacha12", "xchacha20"] {
                for iv in ["null", "plain", "plain64", "plain64be", "benbi"] {
                    out.push((format!("{stream},{name}-adiantum-{iv}"), vec![32]));
                }
            }
        }
        for chain in chains {
            let klens: Vec<usize> = match chain {
                "xts" => lens.iter().map(|n| n * 2).collect(),
                "lrw" => lens.iter().map(|n| n + 16).collect(),
                _ => lens.clone(),
            };
            if chain == "ecb" {
                out.push((format!("{name}-ecb"), klens));
                continue;
            }
            let mut ivs: Vec<String> = ["null", "plain", "plain64", "plain64be", "benbi", "eboiv"]
                .map(String::from)
                .to_vec();
            if let Some(h) = essiv {
                ivs.push(format!("essiv:{h}"));
            }
            for iv in ivs {
                out.push((format!("{name}-{chain}-{iv}"), klens.clone()));
            }
        }
    }
    out
}

fn case() -> impl Strategy<Value = (String, Vec<u8>, u32, u64, bool, u32, Vec<u8>, u64)> {
    let specs = supported();
    (
        0..specs.len(),
        any::<u64>(),
        0u32..4,
        any::<u32>(),
        any::<bool>(),
        0u32..3,
        1usize..4,
        any::<u64>(),
    )
        .prop_flat_map(move |(i, ks, ssi, off, large, kc, units, start)| {
            let (spec, lens) = specs[i].clone();
            let ss = 512u32 << ssi;
            let step = u64::from(ss / 512);
            let keycount = 1u32 << kc;
            let len = lens[(ks as usize) % lens.len()] * keycount as usize;
            let spec = if keycount > 1 {
                let (c, rest) = spec.split_once('-').unwrap();
                format!("{c}:{keycount}-{rest}")
            } else {
                spec
            };
            // Offsets near the 32-bit wrap are the interesting ones too.
            let iv_offset = (u64::from(off) | (u64::from(off & 1) << 32)) / step * step;
            (
                Just(spec),
                proptest::collection::vec(any::<u8>(), len),
                Just(ss),
                Just(iv_offset),
                Just(large),
                Just(keycount),
                proptest::collection::vec(any::<u8>(), units * ss as usize),
                Just(start % (1 << 40) / step * step),
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn decrypt_inverts_encrypt((spec, key, ss, iv_offset, large, _kc, data, start) in case()) {
        let s = CipherSpec::parse(&spec).unwrap();
        let g = Geometry { sector_size: ss, iv_offset, iv_large_sectors: large };
        let e = SectorCrypt::new(&s, &Key::from_bytes(&key), g)
            .unwrap_or_else(|err| panic!("{spec} ({} byte key): {err}", key.len()));
        let mut buf = data.clone();
        e.encrypt(start, &mut buf).unwrap();
        prop_assert_ne!(&buf, &data, "{} left the data unchanged", spec);
        e.decrypt(start, &mut buf).unwrap();
        prop_assert_eq!(buf, data);
    }

    #[test]
    fn old_and_capi_spellings_agree((spec, key, ss, iv_offset, large, kc, data, start) in case()) {
        prop_assume!(kc == 1);
        let old = CipherSpec::parse(&spec).unwrap();
        let capi = CipherSpec::parse(&old.to_capi().unwrap()).unwrap();
        prop_assert_eq!(capi.to_string(), old.to_string());
        let g = Geometry { sector_size: ss, iv_offset, iv_large_sectors: large };
        let key = Key::from_bytes(&key);
        let (mut a, mut b) = (data.clone(), data);
        SectorCrypt::new(&old, &key, g).unwrap().encrypt(start, &mut a).unwrap();
        SectorCrypt::new(&capi, &key, g).unwrap().encrypt(start, &mut b).unwrap();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn table_lines_survive_parse_and_format(
        (spec, key, ss, iv_offset, large, _kc, _data, _start) in case(),
        flags in proptest::collection::vec(any::<bool>(), 6),
        len_units in 1u64..1000,
        start in any::<u32>(),
        offset in any::<u64>(),
    ) {
        let names = ["allow_discards", "same_cpu_crypt", "high_priority",
            "submit_from_crypt_cpus", "no_read_workqueue", "no_write_workqueue"];
        let mut opts: Vec<String> = names.iter().zip(&flags).filter(|p| *p.1).map(|p| p.0.to_uppercase()).collect();
        opts.push(format!("sector_size:{ss}"));
        if large { opts.push("iv_large_sectors".into()); }
        let line = format!(
            "{start} {} crypt {spec} {} {iv_offset} /dev/loop7 {} {} {}",
            len_units * u64::from(ss / 512), Key::from_bytes(&key).table_form(), offset / u64::from(ss / 512) * u64::from(ss / 512), opts.len(), opts.join(" ")
        );
        let t = Table::parse(&line).unwrap();
        let again = Table::parse(&t.to_string()).unwrap();
        prop_assert_eq!(&again, &t);
        prop_assert_eq!(again.to_string(), t.to_string());
        prop_assert_eq!(t.params.geometry(), Geometry { sector_size: ss, iv_offset, iv_large_sectors: large });
    }
}

#[test]
fn every_supported_spec_builds() {
    let specs = supported();
    assert!(specs.len() > 100, "only {} specs", specs.len());
    for (spec, lens) in specs {
        for len in lens {
            let key = Key::from_bytes(&vec![0x11; len]);
            let s = CipherSpec::parse(&spec).unwrap();
            SectorCrypt::new(&s, &key, Geometry::default())
                .unwrap_or_else(|e| panic!("{spec} with {len}-byte key: {e}"));
        }
    }
}
