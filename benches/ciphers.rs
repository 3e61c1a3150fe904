//! Criterion benches of the reference engine, one group per spec and key
//! size, named for exactly what they measure: "<spec> <bits>-bit key /
//! encrypt|decrypt <sector>-byte sectors", single thread (64 KiB per
//! iteration: sixteen 4096-byte sectors, the group CBC encryption
//! interleaves, and below the engine's parallel threshold), throughput in
//! bytes.
//! Compare ratios within one run; absolute figures on shared machines are noise.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dmcrypt_harness::engine::{Geometry, SectorCrypt};
use dmcrypt_harness::key::Key;
use dmcrypt_harness::spec::CipherSpec;
use std::hint::black_box;
use std::time::Duration;

const SPECS: &[(&str, usize)] = &[
    ("aes-xts-plain64", 256),
    ("aes-xts-plain64", 512),
    ("aes-cbc-essiv:sha256", 128),
    ("aes-cbc-essiv:sha256", 256),
    ("aes-cbc-plain", 256),
    ("serpent-xts-plain64", 512),
    ("serpent-cbc-plain64", 256),
    ("twofish-xts-plain64", 512),
    ("twofish-cbc-plain64", 256),
    ("camellia-xts-plain64", 512),
    ("camellia-cbc-plain64", 256),
    ("cast5-cbc-plain64", 128),
    ("cast6-cbc-plain64", 256),
    ("blowfish-cbc-plain64", 256),
    ("des-cbc-plain64", 64),
    ("des3_ede-cbc-plain64", 192),
    ("xchacha12,aes-adiantum-plain64", 256),
    ("xchacha20,aes-adiantum-plain64", 256),
];

fn sectors(c: &mut Criterion) {
    let mut buf = vec![0x5au8; 64 * 1024];
    for &(spec, bits) in SPECS {
        let mut g = c.benchmark_group(format!("{spec} {bits}-bit key"));
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.sample_size(10);
        g.warm_up_time(Duration::from_millis(300));
        g.measurement_time(Duration::from_secs(1));
        let key = Key::from_bytes(&vec![0x42; bits / 8]);
        for ss in [512u32, 4096] {
            let e = SectorCrypt::new(
                &CipherSpec::parse(spec).unwrap(),
                &key,
                Geometry {
                    sector_size: ss,
                    ..Geometry::default()
                },
            )
            .unwrap();
            g.bench_function(format!("encrypt {ss}-byte sectors"), |b| {
                b.iter(|| e.encrypt(0, black_box(&mut buf)).unwrap())
            });
            g.bench_function(format!("decrypt {ss}-byte sectors"), |b| {
                b.iter(|| e.decrypt(0, black_box(&mut buf)).unwrap())
            });
        }
        g.finish();
    }
}

criterion_group!(benches, sectors);
criterion_main!(benches);
