//! Protects the kernel's sector numbering: IV sectors, iv_large_sectors,
//! instance choice under keycount, start sectors and the parallel split.
//! Expected values come from the mode layer driven by hand, not the engine.

use dmcrypt_harness::engine::{Geometry, SectorCrypt};
use dmcrypt_harness::key::Key;
use dmcrypt_harness::mode;
use dmcrypt_harness::spec::CipherSpec;

fn engine(spec: &str, key: &[u8], g: Geometry) -> SectorCrypt {
    SectorCrypt::new(&CipherSpec::parse(spec).unwrap(), &Key::from_bytes(key), g).unwrap()
}

/// One unit through cbc(aes) with an explicit plain64 IV.
fn cbc_unit(key: &[u8], iv_sector: u64, data: &mut [u8]) {
    let m = mode::resolve("cbc", "aes")
        .unwrap()
        .instantiate(key)
        .unwrap();
    let mut iv = [0u8; 16];
    iv[..8].copy_from_slice(&iv_sector.to_le_bytes());
    m.encrypt(&mut iv, data);
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

#[test]
fn second_4k_unit_uses_iv_8_or_1_with_iv_large_sectors() {
    let key = [0x2bu8; 16];
    for (large, want_iv) in [(false, 8u64), (true, 1u64)] {
        let g = Geometry {
            sector_size: 4096,
            iv_offset: 0,
            iv_large_sectors: large,
        };
        let mut data = pattern(8192);
        engine("aes-cbc-plain64", &key, g)
            .encrypt(0, &mut data)
            .unwrap();
        let mut want = pattern(8192)[4096..].to_vec();
        cbc_unit(&key, want_iv, &mut want);
        assert_eq!(&data[4096..], &want[..], "iv_large_sectors={large}");
    }
}

#[test]
fn iv_offset_and_start_sector_add_up() {
    let key = [0x5au8; 16];
    let g = Geometry {
        sector_size: 1024,
        iv_offset: 6,
        iv_large_sectors: false,
    };
    let mut data = pattern(2048);
    engine("aes-cbc-plain64", &key, g)
        .encrypt(10, &mut data)
        .unwrap();
    let mut want = pattern(2048)[1024..].to_vec();
    // Second unit: target sector 12, plus iv_offset 6.
    cbc_unit(&key, 18, &mut want);
    assert_eq!(&data[1024..], &want[..]);
}

#[test]
fn keycount_picks_the_instance_from_the_512_byte_sector() {
    let k0 = [0x01u8; 16];
    let k1 = [0x02u8; 16];
    let both = [k0, k1].concat();
    // 512-byte sectors: odd sectors use the second key.
    let mut data = pattern(1024);
    engine("aes:2-cbc-plain64", &both, Geometry::default())
        .encrypt(0, &mut data)
        .unwrap();
    let mut s0 = pattern(1024)[..512].to_vec();
    let mut s1 = pattern(1024)[512..].to_vec();
    cbc_unit(&k0, 0, &mut s0);
    cbc_unit(&k1, 1, &mut s1);
    assert_eq!(&data[..512], &s0[..]);
    assert_eq!(&data[512..], &s1[..]);
    // 4096-byte sectors step the 512-unit counter by 8: always instance 0.
    let g = Geometry {
        sector_size: 4096,
        ..Geometry::default()
    };
    let mut a = pattern(8192);
    let mut b = pattern(8192);
    engine("aes:2-cbc-plain64", &both, g)
        .encrypt(0, &mut a)
        .unwrap();
    engine("aes-cbc-plain64", &k0, g)
        .encrypt(0, &mut b)
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn uneven_key_split_ignores_the_remainder_like_the_kernel() {
    let mut key = [0x33u8; 33].to_vec();
    key[32] = 0xff;
    let mut a = pattern(1024);
    let mut b = pattern(1024);
    engine("aes:2-cbc-plain64", &key, Geometry::default())
        .encrypt(0, &mut a)
        .unwrap();
    engine("aes:2-cbc-plain64", &key[..32], Geometry::default())
        .encrypt(0, &mut b)
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn parallel_split_matches_sector_by_sector() {
    let key = [0x77u8; 64];
    for spec in [
        "aes-xts-plain64",
        "aes:4-cbc-essiv:sha256",
        "serpent-cbc-eboiv",
    ] {
        let key = if spec.starts_with("serpent") {
            &key[..32]
        } else {
            &key[..]
        };
        let g = Geometry {
            sector_size: 512,
            iv_offset: 4_294_967_000,
            iv_large_sectors: false,
        };
        let e = engine(spec, key, g);
        let mut whole = pattern(3 << 20);
        e.encrypt(64, &mut whole).unwrap();
        let mut piecewise = pattern(3 << 20);
        for (i, unit) in piecewise.chunks_mut(512).enumerate() {
            e.encrypt(64 + i as u64, unit).unwrap();
        }
        assert!(whole == piecewise, "{spec}: parallel and serial differ");
        e.decrypt(64, &mut whole).unwrap();
        assert!(whole == pattern(3 << 20), "{spec}: no round trip");
    }
}

#[test]
#[cfg_attr(
    not(feature = "test-fault"),
    ignore = "the fault hook needs --features test-fault (ci/test.sh enables it)"
)]
fn a_deliberately_broken_engine_is_caught_by_the_vectors() {
    use dmcrypt_harness::vectors::{self, Expected, Kind};
    let (name, text) = vectors::builtin()
        .into_iter()
        .find(|(n, _)| *n == "cryptsetup-cipher-iv.vec")
        .unwrap();
    let file = vectors::parse(name, text).unwrap();
    let v = file
        .vectors
        .iter()
        .find(|v| v.id == "aes-cbc-plain64/512")
        .unwrap();
    let Kind::Sector {
        spec,
        iv_offset,
        sector_size,
        iv_large_sectors,
        start_sector,
    } = &v.kind
    else {
        panic!("not a sector vector")
    };
    let g = Geometry {
        sector_size: *sector_size,
        iv_offset: *iv_offset,
        iv_large_sectors: *iv_large_sectors,
    };
    let Expected::Sha256(want) = v.expected else {
        panic!("expected a digest")
    };
    let spec = CipherSpec::parse(spec).unwrap();
    let run = |e: SectorCrypt| {
        let mut d = v.plaintext.bytes();
        e.encrypt(*start_sector, &mut d).unwrap();
        dmcrypt_harness::hash::sha256(&d)
    };
    assert_eq!(run(SectorCrypt::new(&spec, &v.key, g).unwrap()), want);
    #[cfg(feature = "test-fault")]
    {
        let broken = SectorCrypt::new_with_fault(
            &spec,
            &v.key,
            g,
            dmcrypt_harness::fault::Fault::ByteswapIv,
        )
        .unwrap();
        assert_ne!(run(broken), want, "a big-endian plain64 went unnoticed");
    }
}
