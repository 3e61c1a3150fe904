//! Protects the compatibility modes: lmk (loop-AES), tcw (TrueCrypt),
//! elephant (BitLocker), lrw and adiantum: round trips, key layouts, and the
//! properties that make each what it is.

use dmcrypt_harness::engine::{Geometry, SectorCrypt};
use dmcrypt_harness::key::Key;
use dmcrypt_harness::mode;
use dmcrypt_harness::spec::CipherSpec;

fn engine(spec: &str, key: &[u8], ss: u32) -> SectorCrypt {
    let g = Geometry {
        sector_size: ss,
        iv_offset: 0,
        iv_large_sectors: false,
    };
    SectorCrypt::new(&CipherSpec::parse(spec).unwrap(), &Key::from_bytes(key), g)
        .unwrap_or_else(|e| panic!("{spec}: {e}"))
}

fn key(n: usize, salt: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31) ^ salt).collect()
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 253) as u8).collect()
}

fn round_trip(spec: &str, key: &[u8], ss: u32, start: u64) -> Vec<u8> {
    let e = engine(spec, key, ss);
    let plain = data(4 * ss as usize);
    let mut buf = plain.clone();
    e.encrypt(start, &mut buf).unwrap();
    assert_ne!(buf, plain, "{spec}");
    let ct = buf.clone();
    e.decrypt(start, &mut buf).unwrap();
    assert!(buf == plain, "{spec}: decrypt does not invert encrypt");
    ct
}

#[test]
fn lmk_versions_round_trip_and_differ() {
    let v2_single = round_trip("aes-cbc-lmk", &key(16, 1), 512, 3);
    let v2 = round_trip("aes:64-cbc-lmk", &key(64 * 16, 1), 512, 3);
    let v3 = round_trip("aes:64-cbc-lmk", &key(65 * 16, 1), 512, 3);
    assert_ne!(v2, v3, "the v3 seed changed nothing");
    assert_ne!(v2_single, v2);
    // capi forces 64 keys: the same bytes as the old form.
    assert_eq!(
        round_trip("capi:cbc(aes)-lmk", &key(65 * 16, 1), 512, 3),
        v3
    );
    round_trip("aes:64-cbc-lmk", &key(64 * 32, 2), 512, 0);
    round_trip("twofish-cbc-lmk", &key(32, 3), 512, 1 << 40);
}

#[test]
fn lmk_iv_depends_on_the_rest_of_the_sector() {
    let e = engine("aes-cbc-lmk", &key(16, 9), 512);
    let mut a = data(512);
    let mut b = data(512);
    b[300] ^= 1;
    e.encrypt(0, &mut a).unwrap();
    e.encrypt(0, &mut b).unwrap();
    // CBC alone would leave blocks before byte 300 alone; lmk's IV changes block 0.
    assert_ne!(a[..16], b[..16]);
}

#[test]
fn tcw_round_trips_and_uses_seed_and_whitening() {
    let k = key(32 + 16 + 16, 4);
    let base = round_trip("aes-cbc-tcw", &k, 512, 8);
    for flip in [40, 60] {
        let mut k2 = k.clone();
        k2[flip] ^= 1;
        assert_ne!(
            round_trip("aes-cbc-tcw", &k2, 512, 8),
            base,
            "byte {flip} unused"
        );
    }
    round_trip("serpent-cbc-tcw", &key(32 + 32, 5), 512, 0);
    round_trip("des3_ede-cbc-tcw", &key(24 + 8 + 16, 6), 512, 0);
}

#[test]
fn tcw_whitening_is_the_same_8_bytes_over_the_sector() {
    // Two keys that differ only in the whitening: the ciphertexts differ by
    // one 8-byte pattern repeated across the sector.
    let k = key(32 + 16 + 16, 7);
    let mut k2 = k.clone();
    k2[60] ^= 0x80;
    let mut a = data(512);
    let mut b = data(512);
    engine("aes-cbc-tcw", &k, 512).encrypt(0, &mut a).unwrap();
    engine("aes-cbc-tcw", &k2, 512).encrypt(0, &mut b).unwrap();
    let diff: Vec<u8> = a.iter().zip(&b).map(|(x, y)| x ^ y).collect();
    assert!(diff.chunks(8).all(|c| c == &diff[..8]));
    assert_ne!(&diff[..8], &[0; 8]);
}

#[test]
fn elephant_round_trips_for_both_key_sizes_and_sector_sizes() {
    for (klen, ss) in [(32, 512), (64, 512), (32, 4096), (64, 4096)] {
        round_trip("aes-cbc-elephant", &key(klen, 8), ss, 16);
    }
}

#[test]
fn elephant_diffuses_one_changed_byte_over_the_sector() {
    let e = engine("aes-cbc-elephant", &key(32, 10), 512);
    let mut a = data(512);
    let mut b = data(512);
    b[500] ^= 1;
    e.encrypt(0, &mut a).unwrap();
    e.encrypt(0, &mut b).unwrap();
    // Plain CBC would leave the first 496 bytes alone.
    assert_ne!(a[..16], b[..16]);
}

#[test]
fn lrw_benbi_sectors_equal_the_lrw_primitive_with_the_block_index() {
    let k = key(32 + 16, 11);
    let ct = round_trip("aes-lrw-benbi", &k, 512, 5);
    // benbi: the first block of 512-byte sector s has LRW index s * 32 + 1.
    let m = mode::resolve("lrw", "aes")
        .unwrap()
        .instantiate(&k)
        .unwrap();
    let mut want = data(2048);
    for (i, sector) in want.chunks_mut(512).enumerate() {
        let mut iv = [0u8; 16];
        iv[8..].copy_from_slice(&(((5 + i as u64) << 5) + 1).to_be_bytes());
        m.encrypt(&mut iv, sector);
    }
    assert_eq!(ct, want);
    round_trip("capi:lrw(serpent)-benbi", &key(48, 12), 512, 0);
    round_trip("camellia-lrw-plain64", &key(40, 13), 1024, 0);
}

#[test]
fn adiantum_spellings_agree_and_round_trip() {
    for ss in [512, 4096] {
        for stream in ["xchacha12", "xchacha20"] {
            let k = key(32, 14);
            let old = round_trip(&format!("{stream},aes-adiantum-plain64"), &k, ss, 8);
            let capi = round_trip(&format!("capi:adiantum({stream},aes)-plain64"), &k, ss, 8);
            assert_eq!(old, capi);
        }
    }
}

#[test]
fn adiantum_is_wide_block() {
    let e = engine("xchacha12,aes-adiantum-plain64", &key(32, 15), 4096);
    let mut a = data(4096);
    let mut b = data(4096);
    b[4000] ^= 1;
    e.encrypt(0, &mut a).unwrap();
    e.encrypt(0, &mut b).unwrap();
    let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    assert!(same < 64, "{same} bytes unchanged: not a wide-block cipher");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// (spec, key length, sector sizes allowed) for the data-touching IV modes.
    fn compat_specs() -> Vec<(&'static str, usize, &'static [u32])> {
        vec![
            ("aes-cbc-lmk", 16, &[512]),
            ("aes:64-cbc-lmk", 64 * 16, &[512]),
            ("aes:64-cbc-lmk", 65 * 16, &[512]),
            ("serpent:64-cbc-lmk", 65 * 32, &[512]),
            ("aes-cbc-tcw", 32 + 16 + 16, &[512]),
            ("twofish-cbc-tcw", 16 + 16 + 16, &[512]),
            ("des3_ede-cbc-tcw", 24 + 8 + 16, &[512]),
            ("aes-cbc-elephant", 32, &[512, 1024, 2048, 4096]),
            ("aes-cbc-elephant", 64, &[512, 1024, 2048, 4096]),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn compat_modes_round_trip(
            which in 0usize..9,
            salt in any::<u8>(),
            ss_pick in any::<usize>(),
            units in 1usize..4,
            start in 0u64..(1 << 40),
            iv_offset in any::<u32>(),
            seed in any::<u8>(),
        ) {
            let (spec, klen, sizes) = compat_specs()[which];
            let ss = sizes[ss_pick % sizes.len()];
            let step = u64::from(ss / 512);
            let g = Geometry {
                sector_size: ss,
                iv_offset: u64::from(iv_offset) / step * step,
                iv_large_sectors: false,
            };
            let e = SectorCrypt::new(&CipherSpec::parse(spec).unwrap(), &Key::from_bytes(&key(klen, salt)), g).unwrap();
            let plain: Vec<u8> = (0..units * ss as usize).map(|i| (i as u8).wrapping_mul(seed | 1)).collect();
            let mut buf = plain.clone();
            let start = start / step * step;
            e.encrypt(start, &mut buf).unwrap();
            prop_assert_ne!(&buf, &plain);
            e.decrypt(start, &mut buf).unwrap();
            prop_assert_eq!(buf, plain);
        }
    }
}
